// Where the action's input paths point, checked before anything starts.

import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';

/** The real path of a regular file that must lie inside `root` (after resolving symlinks). */
export async function fileInside(root: string, path: string, input: string): Promise<string> {
  const candidate = isAbsolute(path) ? path : resolve(root, path);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new Error(`input ${input}: ${path} does not exist (looked for ${candidate})`);
  }
  const inside = relative(root, real);
  if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) {
    throw new Error(
      `input ${input}: ${path} resolves to ${real}, outside the working directory ${root}`,
    );
  }
  if (!(await stat(real)).isFile())
    throw new Error(`input ${input}: ${real} is not a regular file`);
  return real;
}

export async function existingDirectory(path: string, input: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new Error(`input ${input}: directory ${path} does not exist`);
  }
  if (!(await stat(real)).isDirectory())
    throw new Error(`input ${input}: ${real} is not a directory`);
  return real;
}
