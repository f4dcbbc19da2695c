// Reading paths a user named, which may be anything: a FIFO, a device, a huge file.
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/** "Is there a regular file here?" without throwing: a missing path is simply not one. */
export function isRegularFile(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isFile(),
    () => false,
  );
}

/**
 * A regular file's bytes, never more than `limit` of them: a caller that gets `limit` bytes
 * knows the file is too big without having read it whole. Anything else is refused with
 * "not a regular file" and the hint, if any (a FIFO or a device would be read for ever).
 */
export async function readRegularFileAtMost(
  file: string,
  limit: number,
  hint?: string,
): Promise<Uint8Array> {
  const notRegular = new Error(`not a regular file${hint === undefined ? '' : `; ${hint}`}`);
  // Checked before opening too: opening a device or a FIFO can act (a FIFO's writer goes on).
  if (!(await stat(file)).isFile()) throw notRegular;
  // O_NONBLOCK: had it become a FIFO since, opening would wait for a writer.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw notRegular;
    const buffer = new Uint8Array(limit);
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
