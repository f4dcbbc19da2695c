// `mkdir -p` for the CLI. Node's own recursive mkdir never returns for a path under /proc (it
// retries there for ever); this makes each missing directory in turn and throws the first error.
// The path is taken resolved (`a/../b` is `b`), and what was made can be taken back.
import { lstat, mkdir, readlink, rmdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathExists } from '../path-exists.js';

/** The directories made, outermost first. */
export async function makeDirectories(path: string, mode: number): Promise<string[]> {
  const missing: string[] = [];
  let at = resolve(path);
  for (; !(await pathExists(at)); at = dirname(at)) missing.unshift(at);
  await refuseNonDirectory(at);
  const made: string[] = [];
  for (const dir of missing) {
    await mkdir(dir, { mode }).then(
      () => made.push(dir),
      async (error: NodeJS.ErrnoException) => {
        // Made meanwhile by someone else: fine if it is a directory (and not ours to take back).
        if (error.code !== 'EEXIST' || !(await lstat(dir)).isDirectory()) throw error;
      },
    );
  }
  return made;
}

/** Takes back what makeDirectories made, deepest first, each only while empty. */
export async function removeMadeDirectories(made: readonly string[]): Promise<void> {
  for (const dir of [...made].reverse()) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
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
