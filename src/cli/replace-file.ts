// Writing a file at a name that may already exist as anything: a symlink or a second name of
// another file planted there is replaced, never written through.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  const fresh = `${path}.${randomBytes(6).toString('hex')}.new`;
  // Exclusive: a name already taken is someone else's file, not ours to write or remove.
  const file = await open(fresh, 'wx', mode);
  try {
    try {
      await file.writeFile(data);
    } finally {
      await file.close();
    }
    await rename(fresh, path);
  } catch (error) {
    await rm(fresh, { force: true });
    throw error;
  }
}
