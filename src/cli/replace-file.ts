// Writing a file at a name that may already exist as anything: a symlink or a second name of
// another file planted there is replaced, never written through.
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  const fresh = `${path}.${randomBytes(6).toString('hex')}.new`;
  await writeFile(fresh, data, { mode, flag: 'wx' });
  try {
    await rename(fresh, path);
  } catch (error) {
    await rm(fresh, { force: true });
    throw error;
  }
}
