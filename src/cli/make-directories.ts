// `mkdir -p` for the CLI. Node's own recursive mkdir never returns for a path under /proc (it
// retries there for ever); this makes each missing directory in turn and throws the first error.
import { lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathExists } from '../path-exists.js';

export async function makeDirectories(path: string, mode: number): Promise<void> {
  const missing: string[] = [];
  let at = resolve(path);
  for (; !(await pathExists(at)); at = dirname(at)) missing.unshift(at);
  await refuseNonDirectory(at);
  for (const dir of missing) {
    await mkdir(dir, { mode }).catch(async (error: NodeJS.ErrnoException) => {
      // Made meanwhile by someone else: fine if it is a directory.
      if (error.code !== 'EEXIST' || !(await lstat(dir)).isDirectory()) throw error;
    });
  }
}

/** What stands at the deepest existing part of the path must be (or link to) a directory. */
async function refuseNonDirectory(at: string): Promise<void> {
  const target = await stat(at).catch(() => undefined);
  if (target === undefined && (await lstat(at)).isSymbolicLink())
    throw new Error(
      `${at} is a symbolic link to ${await readlink(at)}, which does not exist; make its target or give another path`,
    );
  if (target !== undefined && !target.isDirectory())
    throw new Error(`${at} is not a directory; give a directory path`);
}
