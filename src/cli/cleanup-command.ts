// `pipelock-egress cleanup RUN_ID` (root): finish a run that was killed before it could tear
// itself down — the action's post step calls it. Safe to repeat; a run already gone is fine, a
// run still going is stopped first.
import { recoverRun } from '../boundary/recover.js';
import { type CliIo, UsageError } from './io.js';

export async function cleanupCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [runId, ...rest] = args;
  if (runId === undefined || rest.length > 0)
    throw new UsageError('cleanup: give one run id (pe-…)');
  const failures = await recoverRun(runId, (line) => io.err(`pipelock-egress cleanup: ${line}\n`));
  for (const failure of failures) io.err(`pipelock-egress cleanup: ${failure}\n`);
  if (failures.length > 0) return 1;
  io.err(`pipelock-egress cleanup: ${runId}: nothing of it is left\n`);
  return 0;
}
