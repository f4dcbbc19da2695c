// One run at a time on a machine. Runs share the agent's user, so the agent of one could use
// what the other grants that user: its --writable paths, and through a socket bound there, its
// proxy under its policy, recorded in its evidence. The lock is flock(1)'s on a file under
// /run/pipelock-egress, held by a child process for as long as this one lives: a run killed
// outright frees it with its death (the child reads its stdin until then).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoundaryError } from './command.js';
import { isRunId } from './layout.js';

/** flock(1)'s exit code when the lock is taken (its --conflict-exit-code). */
const HELD_ELSEWHERE = 75;

export interface RunLock {
  release(): Promise<void>;
}

export async function takeRunLock(flock: string, base: string): Promise<RunLock> {
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
  holder.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
  holder.stderr.on('data', (chunk: Buffer) => (said += chunk.toString()));
  const exited = once(holder, 'exit') as Promise<[number | null]>;
  const locked = new Promise<void>((resolve) =>
    holder.stdout.on('data', () => said.startsWith('locked\n') && resolve()),
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
      `taking the run lock ${lockFile} failed: ${said.trim() || `flock exited ${code}`}`,
    );
  }
  return {
    // The lock file stays: one unlinked while another run opens it would let two runs each
    // hold a lock.
    async release() {
      holder.stdin.end();
      await exited;
    },
  };
}
