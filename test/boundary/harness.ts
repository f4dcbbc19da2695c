// Runs `pipelock-egress run` for real (root, the built dist/cli.js) with an agent script in a
// fresh working directory, and checks that nothing of the run is left on the machine.
// Everything the agent may reach is on loopback; a canary origin on the host's 127.0.0.1
// counts every connection that a broken boundary would let through.

import '../engine/dial-guard.js';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  symlinkSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { join, resolve } from 'node:path';
import { decisions, readEvidenceDir, type ReadEvidence } from '../engine/helpers.js';
import type { Receipt } from '../../src/receipts/index.js';
import { scratchDir } from '../scratch.js';

export const CLI = resolve('dist/cli.js');

export function requireBuiltCli(): void {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" before the boundary tests`);
  assert.equal(process.getuid?.(), 0, 'the boundary tests need root (CI runs as root)');
}

export interface AgentRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly workdir: string;
  readonly out: string;
}

export interface AgentRunOptions {
  readonly policy: string;
  readonly script: string;
  readonly args?: readonly string[];
  readonly options?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Called once the run has printed this text on stderr (e.g. to signal it). */
  readonly onStderr?: ReadonlyArray<{
    readonly text: string;
    readonly action: (pid: number) => void;
  }>;
  readonly files?: Readonly<Record<string, string>>;
  /** The script argument as given to run (default agent.sh, the script written). */
  readonly scriptArg?: string;
  /** Symlinks made in the working directory before the run: name → target. */
  readonly links?: Readonly<Record<string, string>>;
  /** Resolve when the run process exits, without waiting for its output pipes to close. */
  readonly untilExit?: boolean;
  /** Called with the working directory before the run starts. */
  readonly prepare?: (workdir: string) => void;
  /** Directories made in the working directory before the run. */
  readonly dirs?: readonly string[];
  /**
   * Descriptors the run inherits from its caller, as 30, 31, … (Node's own children do not
   * get the low ones; a caller's high descriptors went through).
   */
  readonly inherit?: readonly number[];
  /** Run from a terminal (a pty made by `script`), as an operator at a shell does. */
  readonly fromTerminal?: true;
  /** A directory to run in (the script and policy are written there; the test removes them). */
  readonly workdir?: string;
  /** Stop reading the run's stdout and stderr after their first bytes, as `| head` does. */
  readonly readersLeaveEarly?: true;
}

/** A world-readable working directory (the agent must be able to read it) with the script. */
export function workdirWith(
  script: string,
  files: Readonly<Record<string, string>> = {},
  workdir = scratchDir('pe-boundary-'),
): string {
  chmodSync(workdir, 0o755);
  writeFileSync(join(workdir, 'policy.yaml'), '');
  writeFileSync(join(workdir, 'agent.sh'), script);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(workdir, name), content);
  return workdir;
}

export function runAgent(options: AgentRunOptions): Promise<AgentRun> {
  const workdir = workdirWith(options.script, options.files, options.workdir);
  for (const dir of options.dirs ?? []) mkdirSync(join(workdir, dir));
  options.prepare?.(workdir);
  for (const [name, target] of Object.entries(options.links ?? {}))
    symlinkSync(target, join(workdir, name));
  writeFileSync(join(workdir, 'policy.yaml'), options.policy);
  const given = options.options?.indexOf('--evidence-output') ?? -1;
  const out = resolve(workdir, given < 0 ? 'out' : (options.options?.[given + 1] ?? ''));
  const argv = [
    CLI,
    'run',
    '--policy',
    join(workdir, 'policy.yaml'),
    '--workdir',
    workdir,
    ...(given < 0 ? ['--evidence-output', out] : []),
    ...(options.options ?? []),
    '--',
    options.scriptArg ?? 'agent.sh',
    ...(options.args ?? []),
  ];
  const [file, args] = options.fromTerminal
    ? [
        'script',
        ['--quiet', '--return', '--command', shellLine([process.execPath, ...argv]), '/dev/null'],
      ]
    : [process.execPath, argv];
  const child = spawn(file, args, {
    cwd: workdir,
    env: { ...process.env, ...options.env },
    stdio: [
      'ignore',
      'pipe',
      'pipe',
      ...(options.inherit ? [...Array<'ignore'>(27).fill('ignore'), ...options.inherit] : []),
    ],
  }) as ChildProcessByStdio<null, Readable, Readable>;
  let stdout = '';
  let stderr = '';
  const pending = [...(options.onStderr ?? [])];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (options.readersLeaveEarly) child.stdout.destroy();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (options.readersLeaveEarly) child.stderr.destroy();
    for (const hook of pending.filter((candidate) => stderr.includes(candidate.text))) {
      pending.splice(pending.indexOf(hook), 1);
      hook.action(child.pid ?? 0);
    }
  });
  return new Promise((resolvePromise) => {
    if (options.untilExit) {
      // The killed run's agent still holds its output pipes: stop reading at its exit.
      child.on('exit', (code) => {
        child.stdout.destroy();
        child.stderr.destroy();
        resolvePromise({ code, stdout, stderr, workdir, out });
      });
    } else
      child.on('close', (code) =>
        // A terminal ends its lines with CR LF.
        resolvePromise({ code, stdout: stdout.replace(/\r\n/g, '\n'), stderr, workdir, out }),
      );
  });
}

export interface HeldUser {
  release(): Promise<void>;
}

/** A host process of `user`, outside any boundary: while it lives, userdel refuses the user. */
export function holdUser(user: string): HeldUser {
  const gid = execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim();
  const holder = spawn(
    'setpriv',
    [`--reuid=${user}`, `--regid=${gid}`, '--clear-groups', 'sleep', '60'],
    { stdio: 'ignore' },
  );
  const exited = once(holder, 'exit');
  return {
    release: async () => {
      holder.kill('SIGKILL');
      await exited;
    },
  };
}

function shellLine(words: readonly string[]): string {
  return words.map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
}

/** The run's evidence, verified: the chain must hold and be sealed. */
export function evidenceOf(run: AgentRun): ReadEvidence & { decisions: Receipt[] } {
  const evidence = readEvidenceDir(join(run.out, 'evidence'));
  assert.equal(evidence.report.valid, true, JSON.stringify(evidence.report.error));
  assert.equal(evidence.report.sealed, true, 'the evidence must be sealed');
  return { ...evidence, decisions: decisions(evidence.receipts) };
}

export function blocked(receipts: readonly Receipt[]): Array<{ target: string; layer: string }> {
  return receipts
    .filter((r) => r.action_record.verdict === 'block')
    .map((r) => ({ target: r.action_record.target, layer: r.action_record.layer ?? '' }));
}

// ---------------------------------------------------------------- canaries on the host's loopback

export interface Canary {
  readonly port: number;
  readonly udpPort: number;
  /** TCP connections and UDP datagrams that reached the host's loopback. */
  hits: number;
  close(): Promise<void>;
}

export async function startCanary(): Promise<Canary> {
  const tcp: Server = createServer((socket) => {
    canary.hits++;
    socket.on('error', () => undefined);
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nCANARY');
  });
  await new Promise<void>((done) => tcp.listen(0, '127.0.0.1', done));
  const udp = createSocket('udp4');
  udp.on('message', () => canary.hits++);
  await new Promise<void>((done) => udp.bind(0, '127.0.0.1', done));
  const canary: Canary = {
    port: (tcp.address() as { port: number }).port,
    udpPort: udp.address().port,
    hits: 0,
    close: () =>
      new Promise((done) => {
        udp.close();
        tcp.close(() => done());
      }),
  };
  return canary;
}

// ---------------------------------------------------------------- nothing left behind

export interface MachineSnapshot {
  readonly netns: string[];
  readonly netnsConfig: string[];
  readonly sudoers: string[];
  readonly runtime: string[];
  readonly users: string[];
  readonly processes: string[];
  readonly mounts: string[];
}

const list = (dir: string, prefix: string): string[] =>
  existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith(prefix)) : [];

export function snapshot(): MachineSnapshot {
  const accounts = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .filter(([name]) => name === 'pipelock-agent' || name === 'pipelock-host');
  const users = accounts.map(([name]) => name ?? '');
  const uids = accounts.map(([, , uid]) => uid ?? '');
  const processes = readdirSync('/proc')
    .filter((name) => /^[0-9]+$/.test(name))
    .flatMap((pid) => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = /^Uid:\s+([0-9]+)/m.exec(status)?.[1];
        if (uid === undefined || !uids.includes(uid)) return [];
        const state = /^State:\s+(.*)$/m.exec(status)?.[1] ?? '?';
        // An exited process whose entry waits for init to collect it (an orphan of a killed
        // run) can do nothing; this machine's init collects them late.
        if (state.startsWith('Z')) return [];
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
        return [`${pid} uid ${uid} ${state}: ${cmdline}`];
      } catch {
        return [];
      }
    });
  return {
    netns: execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith('pe-')),
    netnsConfig: list('/etc/netns', 'pe-'),
    sudoers: list('/etc/sudoers.d', 'pipelock-egress'),
    // The run lock's file stays by design (run-lock.ts).
    runtime: list('/run/pipelock-egress', '').filter((name) => name !== 'run.lock'),
    users,
    processes,
    mounts: readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((line) => /pipelock|pe-[0-9a-f]{10}/.test(line)),
  };
}

/** After a run: no namespace, config, sudoers file, run dir, process or mount is left, and
 * the users are back to how they were before (removed if the run created them). */
export function assertNothingLeft(before: MachineSnapshot): void {
  const after = snapshot();
  assert.deepEqual(
    { ...after, users: after.users },
    {
      netns: [],
      netnsConfig: [],
      sudoers: [],
      runtime: [],
      users: before.users,
      processes: [],
      mounts: [],
    },
  );
}
