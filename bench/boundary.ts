// boundary.setup_ms / boundary.teardown_ms: `pipelock-egress run` with a script that does
// nothing, timed from its own log lines as they arrive. Setup: "setting up" → "boundary
// ready" (users, namespace, firewall, engine, probes); seal: "agent exited" → "evidence
// copied"; teardown: → "torn down". The users exist beforehand (creating them is first-use
// cost, excluded as the targets say). Median of RUNS runs. Needs root.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = 7;
const USERS = ['pipelock-agent', 'pipelock-host'];

export interface BoundaryTimes {
  readonly setupMs: number;
  readonly sealMs: number;
  readonly teardownMs: number;
}

export async function benchBoundary(): Promise<BoundaryTimes> {
  if (process.getuid?.() !== 0) throw new Error('the boundary bench needs root');
  const created = USERS.filter((user) => !exists(user));
  for (const user of created) {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      user,
    ]);
  }
  try {
    const samples: BoundaryTimes[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(await oneRun());
    return {
      setupMs: median(samples.map((s) => s.setupMs)),
      sealMs: median(samples.map((s) => s.sealMs)),
      teardownMs: median(samples.map((s) => s.teardownMs)),
    };
  } finally {
    for (const user of created) execFileSync('userdel', [user]);
  }
}

function exists(user: string): boolean {
  try {
    execFileSync('id', ['-u', user], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function oneRun(): Promise<BoundaryTimes> {
  const workdir = mkdtempSync(join(tmpdir(), 'pe-bench-boundary-'));
  chmodSync(workdir, 0o755);
  writeFileSync(join(workdir, 'policy.yaml'), 'version: "1.0"\negress: []\n');
  writeFileSync(join(workdir, 'agent.sh'), 'true\n');
  const marks = new Map<string, number>();
  const child = spawn(
    process.execPath,
    [
      'dist/cli.js',
      'run',
      '--policy',
      join(workdir, 'policy.yaml'),
      '--workdir',
      workdir,
      '--evidence-output',
      join(workdir, 'out'),
      '--',
      'agent.sh',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const now = performance.now();
    stderr += chunk;
    for (const mark of [
      'setting up the boundary',
      'boundary ready',
      'agent exited',
      'evidence copied',
      'boundary torn down',
    ]) {
      if (!marks.has(mark) && stderr.includes(mark)) marks.set(mark, now);
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  rmSync(workdir, { recursive: true, force: true });
  const at = (mark: string): number => {
    const time = marks.get(mark);
    if (time === undefined || code !== 0)
      throw new Error(`boundary bench run failed (exit ${code}):\n${stderr}`);
    return time;
  };
  return {
    setupMs: at('boundary ready') - at('setting up the boundary'),
    sealMs: at('evidence copied') - at('agent exited'),
    teardownMs: at('boundary torn down') - at('evidence copied'),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
