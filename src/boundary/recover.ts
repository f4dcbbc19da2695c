// Finishing a run that was killed before it could tear itself down (the action's post step, or
// an operator): its saved state says what it had made. A run still going (its main step was
// killed, `run` under sudo was not) is stopped first, so that it tears itself down: taking its
// boundary apart beneath it would break its evidence.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunId, RUNTIME_BASE } from './layout.js';
import { isRunning, stopRun } from './run-process.js';
import { parseRunState } from './run-state.js';
import { sudoersFile } from './sudoers.js';
import { removeRunDirectory, teardown } from './teardown.js';
import { AGENT_USER, HOST_USER } from './users.js';

/** How long a run stopped with SIGTERM may take to seal its evidence and tear down. */
export const RUN_STOP_WAIT_MS = 60_000;

/** Tears down run `runId` from its state file; the failures, or none. A run already gone is fine. */
export async function recoverRun(
  runId: string,
  log: (line: string) => void = () => undefined,
  base = RUNTIME_BASE,
): Promise<string[]> {
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
  const root = join(base, runId);
  const parsed = parseRunState(text, runId, root);
  if (!parsed.ok)
    return [
      `${join(root, 'state.json')} is ${parsed.problem}, so nothing was torn down from it. Copy what you need from ${root} (the engine's evidence is under ${join(root, 'engine')}), then undo the run by hand: \`ip netns delete ${runId}\`, \`rm -f ${sudoersFile(runId)}\`, revoke ACLs given to ${AGENT_USER} on --writable paths (\`setfacl -R -x u:${AGENT_USER} PATH\`), \`userdel ${AGENT_USER}\` and \`userdel ${HOST_USER}\`, then \`rm -rf ${root}\``,
    ];
  const { state } = parsed;
  const { pid } = state.runProcess;
  if (await isRunning(state.runProcess)) {
    log(
      `${runId} is still running (pid ${pid}): stopping it with SIGTERM, so that it seals its evidence and tears itself down`,
    );
    if (!(await stopRun(state.runProcess, RUN_STOP_WAIT_MS))) {
      return [
        `${runId} is still running (pid ${pid}) ${RUN_STOP_WAIT_MS / 1000} s after SIGTERM: nothing was torn down; stop it (kill -KILL ${pid}), then run cleanup again`,
      ];
    }
    // What its own teardown could not finish, if anything, is in its state again.
    return recoverRun(runId, log, base);
  }
  return teardown(state);
}
