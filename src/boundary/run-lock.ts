// One run at a time on a machine. Runs share the agent's user, so the agent of one could use
// what the other grants that user: its --writable paths, and through a socket bound there, its
// proxy under its policy, recorded in its evidence. The lock is flock(1)'s on a file under
// /run/pipelock-egress, held by a child process for as long as this one lives: a run killed
// outright frees it with its death (the child reads its stdin until then).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoundaryError } from './command.js';

/** flock(1)'s exit code when the lock is taken (its --conflict-exit-code). */
const HELD_ELSEWHERE = 75;

export interface RunLock {
  release(): Promise<void>;
}

export async function takeRunLock(flock: string, base: string, runId: string): Promise<RunLock> {
  const lockFile = join(base, 'run.lock');
  const holderFile = join(base, 'run.lock.holder');
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
      const other = await readFile(holderFile, 'utf8').catch(() => 'another run');
      throw new BoundaryError(
        `${other.trim()} is running on this machine, and runs share the agent's user: one at a time; this run started nothing (wait for that one, or run this one elsewhere)`,
      );
    }
    throw new BoundaryError(
      `taking the run lock ${lockFile} failed: ${said.trim() || `flock exited ${code}`}`,
    );
  }
  await writeFile(holderFile, `run ${runId} (pid ${process.pid})\n`, { mode: 0o644 });
  return {
    async release() {
      // Before the lock goes: the next run writes its own. The lock file stays (one unlinked
      // while another run waits to open it would let two runs hold two locks).
      await rm(holderFile, { force: true });
      holder.stdin.end();
      await exited;
    },
  };
}
