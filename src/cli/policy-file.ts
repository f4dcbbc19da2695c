// The policy file's bytes, read the same way by `policy`, `proxy`, `run` and the action: a
// regular file only, and never more than one byte past the most a policy may hold, so an
// oversized file is refused without being read whole. Each caller says how to name another.
import { MAX_POLICY_BYTES } from '../policy/index.js';
import { readRegularFileAtMost } from '../regular-file.js';

export function readPolicyFile(file: string): Promise<Uint8Array> {
  return readRegularFileAtMost(file, MAX_POLICY_BYTES + 1);
}
