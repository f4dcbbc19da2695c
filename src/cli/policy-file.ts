// The policy file's bytes, read the same way by `policy`, `proxy` and `run`: a regular file
// only (a FIFO or a device would be read for ever), and never more than one byte past the
// most a policy may hold, so an oversized file is refused without being read whole.
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { MAX_POLICY_BYTES } from '../policy/index.js';

export async function readPolicyFile(file: string): Promise<Uint8Array> {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer; regular files ignore it.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile())
      throw new Error('not a regular file; give the path of a policy YAML file');
    const buffer = new Uint8Array(MAX_POLICY_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}
