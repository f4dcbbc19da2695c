// Temporary directories of a test process, removed when it exits: a suite run leaves nothing
// behind in the temporary directory (some of them hold hundreds of megabytes of evidence).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
process.once('exit', () => {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      process.stderr.write(`could not remove ${dir}: ${(error as Error).message}\n`);
    }
  }
});

export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
