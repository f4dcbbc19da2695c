// Finishing a run that was killed before it could tear itself down (the action's post step, or
// an operator): its saved state says what it had made.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunId, RUNTIME_BASE } from './layout.js';
import type { RunState } from './run-state.js';
import { removeRunDirectory, teardown } from './teardown.js';

/** Tears down run `runId` from its state file; the failures, or none. A run already gone is fine. */
export async function recoverRun(runId: string, base = RUNTIME_BASE): Promise<string[]> {
  if (!isRunId(runId)) return [`"${runId}" is not a run id (pe- and 10 hex digits)`];
  let text: string;
  try {
    text = await readFile(join(base, runId, 'state.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      return [`cannot read the state of ${runId}: ${(error as Error).message}`];
    // A teardown that failed after removing the state file leaves the rest of the directory.
    return removeRunDirectory(join(base, runId)).then(
      () => [],
      (failure: Error) => [failure.message],
    );
  }
  return teardown(JSON.parse(text) as RunState);
}
