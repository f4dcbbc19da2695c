// Whether anything stands at a path, the name itself: a symbolic link counts, dangling or not.
import { lstat } from 'node:fs/promises';

export function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
