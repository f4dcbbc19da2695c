// Undoing a run, from its saved state: every step tolerates what is already gone, so running it
// twice (the run's own cleanup, then the action's post step) is harmless. Each step is tried
// even when an earlier one failed; the failures are returned, never swallowed. A teardown that
// failed leaves the state of what is still to undo, for `cleanup`.
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { revokeWriteAccess } from './access.js';
import { mustRun } from './command.js';
import { collectEvidence } from './evidence-collect.js';
import { KILL_WAIT_MS, killNamespaceProcesses } from './namespace-processes.js';
import { removeNetwork } from './network.js';
import { saveRunState, type RunState } from './run-state.js';
import { removeAccount } from './users.js';

export async function teardown(state: RunState): Promise<string[]> {
  const failures: string[] = [];
  const step = async (what: string, action: () => Promise<void>): Promise<boolean> => {
    try {
      await action();
      return true;
    } catch (error) {
      failures.push(`${what}: ${(error as Error).message}`);
      return false;
    }
  };
  if (state.netnsCreated)
    await step('killing the processes in the namespace', () =>
      killNamespaceProcesses(state.ip, state.runId),
    );
  if (state.enginePid !== null) {
    if (await step('stopping the engine', () => killEngine(state.enginePid ?? 0, state.root)))
      state.enginePid = null;
  }
  if (state.agentStarted && !state.evidenceCollected) {
    // A run that died before collecting: the engine has sealed on its way out (or was stopped
    // just now); what it wrote is kept, not removed with the run directory.
    await step('collecting the evidence', async () => {
      await collectEvidence(state.evidence);
      state.evidenceCollected = true;
    });
  }
  for (const grant of [...state.aclGrants]) {
    if (await step(`revoking the agent's access to ${grant.path}`, () => revokeWriteAccess(grant)))
      state.aclGrants = state.aclGrants.filter((kept) => kept !== grant);
  }
  if (state.netnsCreated) {
    if (await step('removing the network namespace', () => removeNetwork(state.runId, state.ip)))
      state.netnsCreated = false;
  }
  if (state.sudoersFile !== null) {
    const file = state.sudoersFile;
    if (await step('removing the sudoers drop-in', () => rm(file, { force: true })))
      state.sudoersFile = null;
  }
  // A user removed is taken off the list: by the time cleanup runs, a later run may have
  // created one of that name, and it is that run's to remove.
  for (const user of [...state.createdUsers]) {
    if (await step(`removing user ${user}`, () => removeAccount(user)))
      state.createdUsers = state.createdUsers.filter((kept) => kept !== user);
  }
  // The run directory goes even when a step failed (it holds the signing key and the agent's
  // HOME), unless it holds evidence not collected yet; what is left to undo is kept in a new
  // state file there, for cleanup.
  if (!state.agentStarted || state.evidenceCollected)
    await step('removing the run directory', () => removeRunDirectory(state.root));
  if (failures.length === 0) return failures;
  const kept = await step('keeping the state of what is left', async () => {
    await mkdir(state.root, { recursive: true, mode: 0o711 });
    await saveRunState(join(state.root, 'state.json'), state);
  });
  if (kept)
    failures.push(
      `what is left is recorded in ${join(state.root, 'state.json')}: once the above is fixed, \`pipelock-egress cleanup ${state.runId}\` finishes the teardown`,
    );
  return failures;
}

/**
 * rm(1), not fs.rm: the agent's HOME is in the run directory, and a tree nested deeper than a
 * path can name (PATH_MAX) stops fs.rm, which removes by full path; rm walks it relative to
 * each directory.
 */
export async function removeRunDirectory(root: string): Promise<void> {
  await mustRun(root, ['rm', '-rf', '--one-file-system', '--', root]);
}

/** The engine, only if that pid is still our engine (its command line names the run directory). */
async function killEngine(pid: number, root: string): Promise<void> {
  const isOurs = async (): Promise<boolean> =>
    readFile(`/proc/${pid}/cmdline`, 'utf8').then(
      (cmdline) => cmdline.includes(root),
      () => false,
    );
  if (!(await isOurs())) return;
  process.kill(pid, 'SIGTERM');
  const killAt = Date.now() + KILL_WAIT_MS;
  const giveUpAt = killAt + KILL_WAIT_MS;
  while (await isOurs()) {
    if (Date.now() > giveUpAt) throw new Error(`engine ${pid} survived SIGKILL`);
    if (Date.now() > killAt) process.kill(pid, 'SIGKILL');
    await sleep(20);
  }
}
