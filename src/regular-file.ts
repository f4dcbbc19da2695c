// "Is there a regular file here?" without throwing: a missing path is simply not one.
import { stat } from 'node:fs/promises';

export function isRegularFile(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isFile(),
    () => false,
  );
}
