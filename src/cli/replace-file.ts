// Writing a file at a name that may already exist as anything: a symlink or a second name of
// another file planted there is replaced, never written through.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/** A file written beside its path under a fresh name: `commit` puts it in place, `discard` removes it. */
export interface PreparedFile {
  readonly commit: () => Promise<void>;
  readonly discard: () => Promise<void>;
}

export async function prepareFile(path: string, data: string, mode: number): Promise<PreparedFile> {
  const fresh = `${path}.${randomBytes(6).toString('hex')}.new`;
  const discard = () => rm(fresh, { force: true });
  // Exclusive: a name already taken is someone else's file, not ours to write or remove.
  const file = await open(fresh, 'wx', mode);
  try {
    try {
      await file.writeFile(data);
    } finally {
      await file.close();
    }
  } catch (error) {
    await discard();
    throw error;
  }
  return {
    commit: async () => {
      try {
        await rename(fresh, path);
      } catch (error) {
        await discard();
        throw error;
      }
    },
    discard,
  };
}

export async function replaceFile(path: string, data: string, mode: number): Promise<void> {
  await (await prepareFile(path, data, mode)).commit();
}
