// The machine's run lock, on a lock file in a scratch directory (the real one is
// /run/pipelock-egress's): flock(1) for real, held by a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { takeRunLock } from '../../src/boundary/run-lock.js';
import { scratchDir } from '../scratch.js';

const flock = execFileSync('sh', ['-c', 'command -v flock'], { encoding: 'utf8' }).trim();
const ignore = (): void => undefined;

/** Runs `use` on a scratch directory standing for /run/pipelock-egress, removed after. */
async function withBase(use: (base: string) => Promise<void>): Promise<void> {
  const base = scratchDir('pe-run-lock-');
  try {
    await use(base);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

test('one holder at a time: a second is refused naming the run there, and gets it once released', () =>
  withBase(async (base) => {
    const first = await takeRunLock(flock, base, ignore);
    mkdirSync(join(base, 'pe-00000000a1'));
    await assert.rejects(
      takeRunLock(flock, base, ignore),
      /another run \(pe-00000000a1\) is going on this machine, and runs share the agent's user: one at a time; this run started nothing/,
    );
    await first.release();
    rmSync(join(base, 'pe-00000000a1'), { recursive: true });
    const second = await takeRunLock(flock, base, ignore);
    await second.release();
  }));

test('a run killed before its teardown (its state file left) holds off the next until cleanup', () =>
  withBase(async (base) => {
    mkdirSync(join(base, 'pe-00000000b2'));
    writeFileSync(join(base, 'pe-00000000b2', 'state.json'), '{}');
    await assert.rejects(
      takeRunLock(flock, base, ignore),
      /pe-00000000b2 did not finish \(killed before its teardown\): its agent may still be running as the agent's user; run `pipelock-egress cleanup pe-00000000b2` first/,
    );
    // The refusal let the lock go: once the run is finished, the next one starts.
    rmSync(join(base, 'pe-00000000b2'), { recursive: true });
    const next = await takeRunLock(flock, base, ignore);
    await next.release();
  }));

test('what the holder says on stderr does not keep the lock from being taken', () =>
  withBase(async (base) => {
    // The dynamic loader warns on stderr before flock runs at all.
    process.env['LD_PRELOAD'] = '/nonexistent-preload.so';
    try {
      const lock = await takeRunLock(flock, base, ignore);
      await lock.release();
    } finally {
      delete process.env['LD_PRELOAD'];
    }
  }));

test('a holder that ends before the run releases the lock is reported', () =>
  withBase(async (base) => {
    let lost = '';
    const lock = await takeRunLock(flock, base, (problem) => (lost = problem));
    execFileSync('pkill', ['-KILL', '-f', `^cat$`, '-P', String(findHolder(base))]);
    for (let i = 0; lost === '' && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(lost, /the run lock's holder \(pid [0-9]+\) ended before the run did/);
    await lock.release();
  }));

/** The flock process holding the lock file in `base`. */
function findHolder(base: string): number {
  const pids = execFileSync('pgrep', ['-f', `flock .*${base}/run.lock`], { encoding: 'utf8' });
  return Number(pids.trim().split('\n')[0]);
}
