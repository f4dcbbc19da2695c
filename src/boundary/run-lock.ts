// One run at a time on a machine. Runs share the agent's user, so the agent of one could use
// what the other grants that user: its --writable paths, and through a socket bound there, its
// proxy under its policy, recorded in its evidence. The lock is flock(1)'s on a file under
// /run/pipelock-egress, held by a child process for as long as this one lives: a run killed
// outright frees it with its death (the child reads its stdin until then). Its agent may live
// on until `cleanup` finishes it, so a run whose state file is still there holds off the next.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoundaryError } from './command.js';
import { isRunId, runLayout } from './layout.js';

/** flock(1)'s exit code when the lock is taken (its --conflict-exit-code). */
const HELD_ELSEWHERE = 75;

export interface RunLock {
  release(): Promise<void>;
}

/**
 * Takes the machine's run lock, or throws saying which run holds it. `onLost` hears of a lock
 * holder that ended before the run released it (killed by root, or the OOM killer).
 */
export async function takeRunLock(
  flock: string,
  base: string,
  onLost: (problem: string) => void,
): Promise<RunLock> {
  const lockFile = join(base, 'run.lock');
  // Root's alone: anyone who can open a file can flock it, and so hold every run off.
  await writeFile(lockFile, '', { flag: 'a', mode: 0o600 });
  await chmod(lockFile, 0o600);
  // Its own process group: a Ctrl-C meant for the run must not free the lock mid-teardown.
  const holder = spawn(
    flock,
    [
      '--nonblock',
      '--conflict-exit-code',
      String(HELD_ELSEWHERE),
      lockFile,
      '-c',
      'echo locked; exec cat',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
  );
  let said = '';
  let complained = '';
  holder.stderr.on('data', (chunk: Buffer) => (complained += chunk.toString()));
  const exited = once(holder, 'exit') as Promise<[number | null]>;
  const locked = new Promise<void>((resolve) =>
    holder.stdout.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('locked\n')) resolve();
    }),
  );
  const first = await Promise.race([locked.then(() => undefined), exited]);
  if (first !== undefined) {
    const [code] = first;
    if (code === HELD_ELSEWHERE) {
      // The runs whose directories are here: the one going, and any a kill left for cleanup.
      const runs = (await readdir(base).catch(() => [])).filter(isRunId);
      throw new BoundaryError(
        `another run (${runs.join(', ') || 'its directory already gone'}) is going on this machine, and runs share the agent's user: one at a time; this run started nothing (wait for that one, or run this one elsewhere)`,
      );
    }
    throw new BoundaryError(
      `taking the run lock ${lockFile} failed: ${complained.trim() || `flock exited ${code}`}`,
    );
  }
  let releasing = false;
  void exited.then(() => {
    if (!releasing)
      onLost(
        `the run lock's holder (pid ${holder.pid}) ended before the run did: another run may start meanwhile`,
      );
  });
  const release = async (): Promise<void> => {
    releasing = true;
    holder.stdin.end();
    await exited;
  };
  const unfinished = await unfinishedRuns(base);
  if (unfinished.length > 0) {
    await release();
    throw new BoundaryError(
      `${unfinished.join(', ')} did not finish (killed before its teardown): its agent may still be running as the agent's user; run \`pipelock-egress cleanup ${unfinished[0] ?? ''}\` first (the action's post step does); this run started nothing`,
    );
  }
  return { release };
}

/** Runs whose state file is still there: killed before they could tear themselves down. */
async function unfinishedRuns(base: string): Promise<string[]> {
  const runs = (await readdir(base).catch(() => [])).filter(isRunId);
  const left = await Promise.all(
    runs.map((runId) =>
      access(runLayout(runId, 'agent.sh', base).stateFile).then(
        () => runId,
        () => undefined,
      ),
    ),
  );
  return left.filter((runId) => runId !== undefined);
}
