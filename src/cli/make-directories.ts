// `mkdir -p` for the CLI. Node's own recursive mkdir never returns for a path under /proc (it
// retries there for ever); this makes each missing directory in turn and throws the first error.
import { lstat, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

export async function makeDirectories(path: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let at = resolve(path); !(await exists(at)); at = dirname(at)) missing.unshift(at);
  for (const dir of missing) {
    await mkdir(dir, { mode }).catch(async (error: NodeJS.ErrnoException) => {
      // Made meanwhile by someone else: fine if it is a directory.
      if (error.code !== 'EEXIST' || !(await lstat(dir)).isDirectory()) throw error;
    });
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
