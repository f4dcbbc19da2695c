import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ProxyAgent, request } from 'undici';
import { main } from '../../src/cli/main.js';
import { encodePrivateKeyPem } from '../../src/receipts/index.js';
import { X509Certificate, randomBytes } from 'node:crypto';
import {
  assertValid,
  backend,
  cleanup,
  curl,
  decisions,
  echo,
  makePki,
  parseCurlResponse,
  rawExchange,
  readCompleteLines,
  readEvidenceDir,
  startEngine,
  startHttpsOrigin,
  startOrigin,
  statusOf,
  tempDir,
  waitFor,
  type Origin,
} from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUARD = fileURLToPath(new URL('./dial-guard.ts', import.meta.url));
const pki = makePki(['secure.example.test']);
after(() => cleanup(pki.dir));

interface Cli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: Promise<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

/** `launcher`: a command line the CLI's own is appended to (it ends in an exec of it). */
function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  launcher: readonly string[] = [],
): Cli {
  // The child runs behind the same dial guard: it may reach loopback only.
  const [command, ...commandArgs] = [
    ...launcher,
    process.execPath,
    ...['--import', 'tsx', '--import', GUARD, join(ROOT, 'src/cli/index.ts'), ...args],
  ] as [string, ...string[]];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
  });
  let out = '';
  let err = '';
  let onLine: (line: Record<string, unknown>) => void = () => undefined;
  const ready = new Promise<Record<string, unknown>>((resolve) => (onLine = resolve));
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    const first = out.split('\n')[0];
    if (out.includes('\n') && first) onLine(JSON.parse(first) as Record<string, unknown>);
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, ready, exited, stdout: () => out, stderr: () => err };
}

async function readyOrExit(cli: Cli): Promise<Record<string, unknown>> {
  const outcome = await Promise.race([cli.ready, cli.exited.then(() => undefined)]);
  if (outcome === undefined) throw new Error(`the proxy exited early: ${cli.stderr()}`);
  return outcome;
}

interface ProxiedOrigin {
  readonly cli: Cli;
  readonly ready: Record<string, unknown>;
  readonly dir: string;
  readonly evidence: string;
}

/**
 * Runs `use` once the proxy, started on the policy for `origin` with options `more` in a new
 * directory, is ready; then stops the proxy, closes the origin and removes the directory.
 */
async function withProxyFor(
  origin: Origin,
  more: readonly string[],
  use: (proxied: ProxiedOrigin) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const evidence = join(dir, 'evidence');
  const cli = runCli(loopbackProxy(policyFile(dir, policyFor(origin.port)), evidence, ...more));
  try {
    await use({ cli, ready: await readyOrExit(cli), dir, evidence });
  } finally {
    cli.child.kill('SIGKILL');
    await origin.close();
    cleanup(dir);
  }
}

function policyFile(dir: string, text: string): string {
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

const policyFor = (port: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "secure.example.test"
    ports: [${port}]
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`;

test('proxy CLI: ready line, traffic, SIGTERM seals the evidence and exits 0', async () => {
  const origin = await startOrigin(echo);
  await withProxyFor(
    origin,
    ['--resolve', 'api.example.test:127.0.0.1', '--identity', 'cli-agent'],
    async ({ cli, evidence, ready }) => {
      assert.equal(ready.event, 'listening');
      assert.match(String(ready.url), /^http:\/\/127\.0\.0\.1:\d+$/);
      // The run CA: its certificate beside the evidence, its key nowhere on disk.
      assert.equal(ready.ca_cert, join(evidence, 'run-ca.pem'));
      const caCert = new X509Certificate(readFileSync(String(ready.ca_cert)));
      assert.equal(caCert.ca, true);
      assert.match(caCert.subject, /CN=pipelock-egress run CA/);
      for (const name of readdirSync(evidence))
        assert.doesNotMatch(readFileSync(join(evidence, name), 'latin1'), /PRIVATE KEY/, name);
      assert.match(String(ready.signer_key), /^[0-9a-f]{64}$/);
      const proxyUrl = String(ready.url);
      const ok = await curl([
        '-i',
        '--proxy',
        proxyUrl,
        `http://api.example.test:${origin.port}/r/one`,
      ]);
      assert.equal(parseCurlResponse(ok.stdout).status, 200);
      const blocked = await curl(['-i', '--proxy', proxyUrl, `http://nowhere.example.test/`]);
      assert.equal(parseCurlResponse(blocked.stdout).status, 403);
      const health = await curl([`${proxyUrl}/health`]);
      assert.equal((JSON.parse(health.stdout.toString()) as { status: string }).status, 'healthy');
      await waitFor(
        () => cli.stderr().includes('"verdict":"block"'),
        3_000,
        'the decision log line',
      );
      cli.child.kill('SIGTERM');
      const exit = await cli.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, cli.stderr());
      const lines = cli
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(lines.length, 2);
      const sealed = lines[1] ?? {};
      assert.equal(sealed.event, 'sealed');
      assert.equal(sealed.receipts, 4, 'open, allow, block, close');
      const read = readEvidenceDir(evidence);
      assertValid(read, true);
      assert.equal(read.report.root_hash, sealed.root_hash);
      assert.deepEqual(read.report.signer_keys, [ready.signer_key]);
      const records = decisions(read.receipts).map((r) => r.action_record);
      assert.deepEqual(
        records.map((r) => r.verdict),
        ['allow', 'block'],
      );
      assert.equal(records[0]?.actor, 'cli-agent');
      assert.equal(read.report.policy_hashes[0], ready.policy_hash);
    },
  );
});

test('proxy CLI: what a client sent reaches the log lines escaped: no C1 control (CSI), bidi override or line separator raw', async () => {
  const origin = await startOrigin(echo);
  await withProxyFor(
    origin,
    ['--resolve', 'api.example.test:127.0.0.1'],
    async ({ cli, ready }) => {
      const port = Number(new URL(String(ready.url)).port);
      const target = `api.example.test:${origin.port}`;
      // Header bytes are read as latin1: 0x9b is U+009B, a terminal's CSI.
      const hostile = Buffer.from('gzip\x9b1A\x9b2K\xe2\x80\xae, chunked', 'latin1');
      const { text } = await rawExchange(port, [
        `POST http://${target}/r/x HTTP/1.1\r\nHost: ${target}\r\nTransfer-Encoding: `,
        hostile,
        '\r\n\r\n0\r\n\r\n',
      ]);
      assert.match(text, /^HTTP\/1\.1 [45]\d\d /);
      await waitFor(() => cli.stderr().includes('\\u009b'), 3_000, 'the escaped decision line');
      assert.doesNotMatch(cli.stderr(), /[\u0080-\u009f\u202a-\u202e\u2028\u2029]/);
      const line = cli
        .stderr()
        .split('\n')
        .find((l) => l.includes('\\u009b'));
      assert.match(String((JSON.parse(line ?? '') as { reason: string }).reason), /\u009b1a/i);
    },
  );
});

test('proxy CLI: a second SIGTERM or SIGINT while it stops does not end it before it has sealed', async () => {
  // An origin that never answers: the engine waits for the request in flight as it stops.
  const origin = await startOrigin(() => undefined);
  await withProxyFor(
    origin,
    ['--resolve', 'api.example.test:127.0.0.1'],
    async ({ cli, evidence, ready }) => {
      const hanging = curl([
        ...['--proxy', String(ready.url), '--max-time', '20'],
        `http://api.example.test:${origin.port}/hang`,
      ]);
      await waitFor(() => origin.hits === 1, 5_000, 'the request in flight');
      cli.child.kill('SIGTERM');
      await delay(300);
      cli.child.kill('SIGINT');
      cli.child.kill('SIGTERM');
      const exit = await cli.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, cli.stderr());
      assert.match(cli.stderr(), /SIGINT: already stopping; sealing the evidence/);
      assertValid(readEvidenceDir(evidence), true);
      await hanging;
    },
  );
});

test('proxy CLI: a log reader that goes away does not stop it: traffic goes on, SIGTERM seals', async () => {
  const origin = await startOrigin(echo);
  await withProxyFor(
    origin,
    ['--resolve', 'api.example.test:127.0.0.1'],
    async ({ cli, evidence, ready }) => {
      cli.child.stderr.destroy();
      for (const path of ['/one', '/two']) {
        const ok = await curl([
          '-i',
          '--proxy',
          String(ready.url),
          `http://api.example.test:${origin.port}${path}`,
        ]);
        assert.equal(parseCurlResponse(ok.stdout).status, 200);
      }
      cli.child.kill('SIGTERM');
      assert.deepEqual(await cli.exited, { code: 0, signal: null });
      const read = readEvidenceDir(evidence);
      assertValid(read, true);
      assert.equal(decisions(read.receipts).length, 2);
    },
  );
});

test('proxy CLI: evidence that cannot be sealed (a full disk) ends it with exit 1 and a clear message, the chain a verifiable prefix', async () => {
  const origin = await startOrigin(echo);
  const dir = tempDir();
  const evidence = join(dir, 'evidence');
  mkdirSync(evidence);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', evidence]);
  const cli = runCli(
    loopbackProxy(
      policyFile(dir, policyFor(origin.port)),
      evidence,
      '--resolve',
      'api.example.test:127.0.0.1',
    ),
  );
  try {
    const ready = await readyOrExit(cli);
    const url = `http://api.example.test:${origin.port}/r/${'x'.repeat(600)}`;
    let status = 200;
    for (let sent = 0; status === 200 && sent < 200; sent += 1)
      status = parseCurlResponse(
        (await curl(['-i', '--proxy', String(ready.url), url])).stdout,
      ).status;
    assert.equal(status, 503, 'the full disk refuses traffic');
    cli.child.kill('SIGTERM');
    const exit = await cli.exited;
    assert.deepEqual(exit, { code: 1, signal: null }, cli.stderr());
    assert.match(
      cli.stderr(),
      /^pipelock-egress proxy: the evidence could not be sealed: evidence cannot be written: .*; the files in .* hold an unsealed chain, every complete line of which still verifies$/m,
    );
    assert.doesNotMatch(cli.stderr(), /internal error/);
    const read = readCompleteLines(evidence);
    assert.equal(read.report.valid, true, read.report.error?.message);
    assert.equal(read.report.sealed, false);
  } finally {
    cli.child.kill('SIGKILL');
    await cli.exited;
    execFileSync('umount', [evidence]);
    await origin.close();
    cleanup(dir);
  }
});

test('proxy CLI: --signing-key signs the chain, --run-capsule-sha256 is bound by its session open; SIGINT seals too', async () => {
  const dir = tempDir();
  const seed = randomBytes(32);
  const keyFile = join(dir, 'signing-key.pem');
  writeFileSync(keyFile, encodePrivateKeyPem(seed), { mode: 0o600 });
  const expectedKey = Buffer.from(backend.ed25519PublicKey(seed)).toString('hex');
  const cli = runCli(
    loopbackProxy(
      policyFile(dir, policyFor(1)),
      join(dir, 'ev'),
      '--signing-key',
      keyFile,
      '--run-capsule-sha256',
      'c'.repeat(64),
    ),
  );
  try {
    const ready = await readyOrExit(cli);
    assert.equal(ready.signer_key, expectedKey);
    cli.child.kill('SIGINT');
    assert.deepEqual(await cli.exited, { code: 0, signal: null });
    const read = readEvidenceDir(join(dir, 'ev'));
    assertValid(read, true);
    assert.deepEqual(read.report.signer_keys, [expectedKey]);
    const close = read.receipts.at(-1)?.action_record.session_control;
    assert.equal(close?.kind, 'session_close');
    // In the open, and so in the g1 genesis the chain verified from.
    const open = read.receipts[0]?.action_record;
    assert.equal(open?.session_control?.open?.posture_capsule_sha256, 'c'.repeat(64));
    assert.match(open?.chain_prev_hash ?? '', /^g1:/);
  } finally {
    cli.child.kill('SIGKILL');
    cleanup(dir);
  }
});

test('proxy CLI: a listener it cannot open (port taken) leaves the evidence directory as it found it, fresh or a chain to continue', async () => {
  const dir = tempDir();
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const busyPort = (busy.address() as AddressInfo).port;
  const keyFile = join(dir, 'signing-key.pem');
  writeFileSync(keyFile, encodePrivateKeyPem(randomBytes(32)), { mode: 0o600 });
  const policy = policyFile(dir, policyFor(1));
  // Every file, the run CA certificate too.
  const contentsOf = (name: string) =>
    readdirSync(join(dir, name)).map((file) => [
      file,
      readFileSync(join(dir, name, file), 'latin1'),
    ]);
  try {
    const startOn = (port: number, evidence: string, ...more: string[]) => [
      ...['proxy', '--policy', policy, '--listen', `127.0.0.1:${port}`],
      ...['--evidence-dir', join(dir, evidence), ...more],
    ];
    // A directory it made (and the ones it made on the way) goes again; so any key may start
    // there later.
    const fresh = await runInProcess(startOn(busyPort, 'made/on/the/way'));
    assert.equal(fresh.code, 1);
    assert.match(fresh.err, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.equal(existsSync(join(dir, 'made')), false);
    // A path through `..` is taken resolved: the directory it names is made and taken back,
    // an empty one that was there stays, and nothing is made on the way.
    mkdirSync(join(dir, 'there'), { mode: 0o700 });
    assert.equal((await runInProcess(startOn(busyPort, 'not-made/../there/ev'))).code, 1);
    assert.deepEqual(readdirSync(join(dir, 'there')), []);
    assert.equal(existsSync(join(dir, 'not-made')), false);
    mkdirSync(join(dir, 'fresh'), { mode: 0o700 });
    assert.equal((await runInProcess(startOn(busyPort, 'fresh'))).code, 1);
    assert.deepEqual(contentsOf('fresh'), []);
    const later = runCli(startOn(0, 'fresh'));
    try {
      assert.equal((await readyOrExit(later)).event, 'listening');
    } finally {
      later.child.kill('SIGKILL');
    }
    // A chain left unsealed (kill -9): the failed start adds nothing to it.
    const crashed = runCli(startOn(0, 'chain', '--signing-key', keyFile));
    await readyOrExit(crashed);
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    const before = contentsOf('chain');
    assert.ok(before.some(([file]) => file === 'run-ca.pem'));
    const failed = await runInProcess(startOn(busyPort, 'chain', '--signing-key', keyFile));
    assert.equal(failed.code, 1);
    assert.deepEqual(contentsOf('chain'), before);
  } finally {
    busy.close();
    cleanup(dir);
  }
});

test('proxy CLI: stopped before run hands over its listener, it takes the start back and exits 0', async () => {
  const dir = tempDir();
  const evidence = join(dir, 'made', 'ev');
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', '--import', GUARD, join(ROOT, 'src/cli/index.ts'), 'proxy'],
      ...['--policy', policyFile(dir, policyFor(1)), '--listen-inherited'],
      ...['--evidence-dir', evidence],
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { PATH: process.env.PATH ?? '' } },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    child.send({ type: 'secrets', values: {} });
    // Its session open written and its stop handler set (SigCgt holds SIGTERM, 15), it waits
    // for the listener that never comes.
    const catchesSigterm = () =>
      (BigInt(
        `0x${/^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? '0'}`,
      ) &
        (1n << 14n)) !==
      0n;
    await waitFor(
      () =>
        existsSync(evidence) &&
        readdirSync(evidence).some((f) => f.startsWith('evidence-')) &&
        catchesSigterm(),
      20_000,
      'the session open and the stop handler',
    );
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /already stopping/);
    assert.equal(existsSync(join(dir, 'made')), false, 'the directories it made are gone');
  } finally {
    child.kill('SIGKILL');
    cleanup(dir);
  }
});

test('proxy CLI: --listen 0.0.0.0:0 is refused (exit 2) before any evidence is started', async () => {
  const dir = tempDir();
  const cli = runCli([
    'proxy',
    '--policy',
    policyFile(dir, policyFor(1)),
    '--listen',
    '0.0.0.0:0',
    '--evidence-dir',
    join(dir, 'ev'),
  ]);
  try {
    const exit = await cli.exited;
    assert.equal(exit.code, 2, cli.stderr());
    assert.match(
      cli.stderr(),
      /--listen 0\.0\.0\.0:0: the proxy listens on a loopback address only/,
    );
    assert.equal(cli.stdout(), '');
    assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
  } finally {
    cleanup(dir);
  }
});

/** Runs the CLI in this process (for invocations that end before anything listens). */
async function runInProcess(
  args: readonly string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readFile: (p) => readFile(p),
  });
  return { code, out, err };
}

for (const listen of [
  '[::]:0',
  '192.0.2.1:8080',
  '10.0.0.1:0',
  'localhost:0',
  '127.0.0.1',
  '127.0.0.1:99999',
]) {
  test(`proxy CLI: --listen ${listen} is refused (exit 2)`, async () => {
    const dir = tempDir();
    try {
      const result = await runInProcess([
        'proxy',
        '--policy',
        policyFile(dir, policyFor(1)),
        '--listen',
        listen,
        '--evidence-dir',
        join(dir, 'ev'),
      ]);
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, /--listen/);
      assert.equal(result.out, '');
      assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
    } finally {
      cleanup(dir);
    }
  });
}

test('proxy CLI: missing required options are usage errors (exit 2)', async () => {
  for (const args of [
    ['proxy'],
    ['proxy', '--policy', 'p.yaml'],
    ['proxy', '--policy', 'p.yaml', '--listen', '127.0.0.1:0'],
  ]) {
    const result = await runInProcess(args);
    assert.equal(result.code, 2, args.join(' '));
    assert.match(result.err, /is required/);
  }
});

/** `proxy` on a free loopback port with this policy and evidence directory, and more options. */
function loopbackProxy(policy: string, evidence: string, ...more: string[]): string[] {
  return [
    'proxy',
    '--policy',
    policy,
    '--listen',
    '127.0.0.1:0',
    '--evidence-dir',
    evidence,
    ...more,
  ];
}

test('proxy CLI: malformed --resolve, --run-capsule-sha256 and --identity are usage errors (exit 2), before any evidence', async () => {
  const capsuleError = /--run-capsule-sha256 takes 64 lowercase hex digits/;
  for (const [option, value, error] of [
    ['--resolve', 'api.example.test:not-an-ip', /--resolve .*not an IP address/],
    ['--run-capsule-sha256', 'c'.repeat(63), capsuleError],
    ['--run-capsule-sha256', 'C'.repeat(64), capsuleError],
    ['--run-capsule-sha256', `${'c'.repeat(64)}\n`, capsuleError],
    [
      '--identity',
      'agent\nforged line',
      /--identity: expected at most 128 characters without control/,
    ],
    ['--identity', 'a'.repeat(129), /--identity: expected at most 128 characters/],
  ] as const) {
    const dir = tempDir();
    try {
      const result = await runInProcess(
        loopbackProxy(policyFile(dir, policyFor(1)), join(dir, 'ev'), option, value),
      );
      assert.equal(result.code, 2, result.err);
      assert.match(result.err, error);
      assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
    } finally {
      cleanup(dir);
    }
  }
});

test('proxy CLI: an IPv4 pin in shorthand, decimal or octal is a usage error (exit 2) saying how it reads, before any evidence', async () => {
  for (const [written, read] of [
    ['127.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['010.0.0.1', '8.0.0.1'],
  ] as const) {
    const dir = tempDir();
    try {
      const result = await runInProcess(
        loopbackProxy(
          policyFile(dir, policyFor(1)),
          join(dir, 'ev'),
          '--resolve',
          `api.example.test:${written}`,
        ),
      );
      assert.equal(result.code, 2, result.err);
      assert.ok(
        result.err.includes(
          `proxy: --resolve "${written}" is read as the IPv4 address ${read} (leading zeros mean octal, 0x hex, and missing parts are filled with zeros); write the address in dotted decimal, "${read}" or the one you meant\n`,
        ),
        result.err,
      );
      assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
    } finally {
      cleanup(dir);
    }
  }
});

test('proxy CLI: one name pinned to two addresses is a usage error (exit 2) naming both, before any evidence', async () => {
  const dir = tempDir();
  const pins = ['api.example.test:127.0.0.1', 'api.example.test:127.0.0.2'];
  const cli = runCli(
    loopbackProxy(
      policyFile(dir, policyFor(1)),
      join(dir, 'ev'),
      ...pins.flatMap((pin) => ['--resolve', pin]),
    ),
  );
  try {
    const ended = await Promise.race([cli.exited, cli.ready.then(() => undefined)]);
    assert.equal(ended?.code, 2, `it did not stop: ${cli.stderr()}`);
    assert.match(
      cli.stderr(),
      /^pipelock-egress: proxy: --resolve api\.example\.test:127\.0\.0\.1 and api\.example\.test:127\.0\.0\.2 pin api\.example\.test to two addresses; keep the one you mean\n/,
    );
    assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
  } finally {
    cli.child.kill();
    cleanup(dir);
  }
});

test('proxy CLI: an invalid policy exits 1 naming the problem', async () => {
  const dir = tempDir();
  try {
    const result = await runInProcess(
      loopbackProxy(policyFile(dir, 'version: "1.0"\negress: 7\n'), join(dir, 'ev')),
    );
    assert.equal(result.code, 1);
    assert.match(result.err, /policy\.yaml:2/);
  } finally {
    cleanup(dir);
  }
});

test('proxy CLI: a policy file that cannot be read exits 1 naming it, before any evidence', async () => {
  const dir = tempDir();
  try {
    const missing = join(dir, 'nope.yaml');
    const result = await runInProcess(loopbackProxy(missing, join(dir, 'ev')));
    assert.equal(result.code, 1, result.err);
    assert.match(
      result.err,
      /^pipelock-egress proxy: cannot read the policy .*nope\.yaml: ENOENT.*; give --policy a readable policy file\n$/,
    );
    assert.deepEqual(readdirSync(dir), [], 'no evidence was started');
  } finally {
    cleanup(dir);
  }
});

test('proxy CLI: a policy that is a FIFO exits 1 at once, not a regular file, before any evidence', async () => {
  const dir = tempDir();
  try {
    const fifo = join(dir, 'policy.yaml');
    execFileSync('mkfifo', [fifo]);
    const result = await runInProcess(loopbackProxy(fifo, join(dir, 'ev')));
    assert.equal(result.code, 1, result.err);
    assert.match(result.err, /cannot read the policy .*policy\.yaml: not a regular file/);
    assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
  } finally {
    cleanup(dir);
  }
});

test('proxy CLI: an --upstream-ca that cannot be read or holds no certificate exits 1 naming it, before any evidence', async () => {
  const dir = tempDir();
  try {
    const policy = policyFile(dir, 'version: "1.0"\negress:\n  - destination: "a.test"\n');
    const notPem = join(dir, 'not-a-ca.txt');
    writeFileSync(notPem, 'hostname\n');
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    for (const [file, reason] of [
      [join(dir, 'nope.pem'), /cannot read --upstream-ca .*nope\.pem: ENOENT/],
      [
        notPem,
        /--upstream-ca .*not-a-ca\.txt holds no PEM certificate \(-----BEGIN CERTIFICATE-----\); give the CA's certificate in PEM\n$/,
      ],
      [broken, /--upstream-ca .*broken\.pem: certificate 1 of 1 cannot be read: /],
    ] as const) {
      const result = await runInProcess(
        loopbackProxy(policy, join(dir, 'ev'), '--upstream-ca', file),
      );
      assert.equal(result.code, 1, result.err);
      assert.match(result.err, reason);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['broken.pem', 'not-a-ca.txt', 'policy.yaml']);
  } finally {
    cleanup(dir);
  }
});

test('proxy CLI: a bound secret too short to tell from ordinary text exits 1 before any evidence; one with no value is warned about', async () => {
  const dir = tempDir();
  const policy = policyFile(
    dir,
    'version: "1.0"\negress:\n  - destination: "a.test"\nsecrets:\n  - env: PE_TEST_UNSET\n    allow: ["a.test"]\n  - env: PE_TEST_SHORT\n    allow: ["a.test"]\n',
  );
  process.env['PE_TEST_SHORT'] = ' 1234567\n';
  delete process.env['PE_TEST_UNSET'];
  try {
    const result = await runInProcess(loopbackProxy(policy, join(dir, 'ev')));
    assert.equal(result.code, 1, result.err);
    assert.match(
      result.err,
      /^pipelock-egress proxy: warning: .*policy\.yaml: secrets\[0\] \(PE_TEST_UNSET\): PE_TEST_UNSET has no value here, so nothing is kept from other destinations under that name; check the name/m,
    );
    assert.match(
      result.err,
      /^pipelock-egress proxy: .*policy\.yaml: secrets\[1\] \(PE_TEST_SHORT\): the value of PE_TEST_SHORT is 7 characters long; a bound secret needs at least 8 .*: bind a longer secret or remove the binding$/m,
    );
    assert.doesNotMatch(result.err, /1234567/);
    assert.deepEqual(readdirSync(dir), ['policy.yaml'], 'no evidence was started');
  } finally {
    delete process.env['PE_TEST_SHORT'];
    cleanup(dir);
  }
});

test('proxy CLI: an evidence directory that already holds evidence is refused with a clear message', async () => {
  const dir = tempDir();
  const evidence = join(dir, 'ev');
  mkdirSync(evidence);
  writeFileSync(join(evidence, 'evidence-proxy-0.jsonl'), '');
  try {
    const result = await runInProcess(loopbackProxy(policyFile(dir, policyFor(1)), evidence));
    assert.equal(result.code, 1, result.err);
    assert.match(result.err, /already holds evidence-proxy-0\.jsonl/);
    assert.equal(result.out, '');
  } finally {
    cleanup(dir);
  }
});

test('proxy CLI: a link planted where the run CA certificate goes is replaced, not written through', async () => {
  const dir = tempDir();
  const evidence = join(dir, 'ev');
  mkdirSync(evidence, { mode: 0o700 });
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, 'precious');
  symlinkSync(victim, join(evidence, 'run-ca.pem'));
  const cli = runCli(loopbackProxy(policyFile(dir, policyFor(1)), evidence));
  try {
    const ready = await readyOrExit(cli);
    assert.equal(readFileSync(victim, 'utf8'), 'precious');
    assert.ok(lstatSync(String(ready.ca_cert)).isFile());
    assert.equal(new X509Certificate(readFileSync(String(ready.ca_cert))).ca, true);
    cli.child.kill('SIGTERM');
    assert.equal((await cli.exited).code, 0, cli.stderr());
  } finally {
    cli.child.kill('SIGKILL');
    cleanup(dir);
  }
});

test('proxy CLI: --upstream-ca lets absolute-form https requests verify a private origin', async () => {
  const origin = await startHttpsOrigin((req, res) => res.end(`secure ${req.url}`), pki);
  await withProxyFor(
    origin,
    ['--resolve', 'secure.example.test:127.0.0.1', '--upstream-ca', pki.caFile],
    async ({ ready }) => {
      const port = Number(new URL(String(ready.url)).port);
      const target = `secure.example.test:${origin.port}`;
      const { text } = await rawExchange(
        port,
        `GET https://${target}/r/abs HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(text), 200, text);
      assert.match(text, /secure \/r\/abs$/);
    },
  );
});

test('upstream TLS is verified: without the CA an https origin is refused 502', async () => {
  const origin = await startHttpsOrigin((_req, res) => res.end('should not be read'), pki);
  const proxy = await startEngine({
    policy: policyFor(origin.port),
    pins: { 'secure.example.test': '127.0.0.1' },
  });
  try {
    const target = `secure.example.test:${origin.port}`;
    const { text } = await rawExchange(
      proxy.port,
      `GET https://${target}/ HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(text), 502, text);
    assert.match(text, /X-Pipelock-Egress-Block: upstream/);
    assert.match(text, /certificate/i);
  } finally {
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('proxy CLI: upstream TLS trusts the bundled roots, the system bundle and --upstream-ca only, not NODE_EXTRA_CA_CERTS from its environment', async () => {
  const origin = await startHttpsOrigin((req, res) => res.end(`secure ${req.url}`), pki);
  const dir = tempDir();
  const target = `secure.example.test:${origin.port}`;
  const answer = async (...more: string[]) => {
    const cli = runCli(
      loopbackProxy(
        policyFile(dir, policyFor(origin.port)),
        join(dir, `evidence-${more.length}`),
        '--resolve',
        'secure.example.test:127.0.0.1',
        ...more,
      ),
      { NODE_EXTRA_CA_CERTS: pki.caFile },
    );
    try {
      const ready = await readyOrExit(cli);
      const { text } = await rawExchange(
        Number(new URL(String(ready.url)).port),
        `GET https://${target}/x HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
      );
      return statusOf(text);
    } finally {
      cli.child.kill('SIGKILL');
    }
  };
  try {
    assert.equal(await answer(), 502);
    assert.equal(await answer('--upstream-ca', pki.caFile), 200);
  } finally {
    await origin.close();
    cleanup(dir);
  }
});

test("proxy CLI: upstream TLS trusts the system's CA bundle (where a self-hosted runner keeps its internal CAs)", async () => {
  const origin = await startHttpsOrigin((req, res) => res.end(`secure ${req.url}`), pki);
  const dir = tempDir();
  const systemBundle = '/etc/ssl/certs/ca-certificates.crt';
  const bundle = join(dir, 'ca-certificates.crt');
  writeFileSync(
    bundle,
    `${readFileSync(systemBundle, 'utf8')}\n${readFileSync(pki.caFile, 'utf8')}`,
  );
  // The bundle with the test CA in it is seen by the proxy alone, in a mount namespace of its own.
  const cli = runCli(
    loopbackProxy(
      policyFile(dir, policyFor(origin.port)),
      join(dir, 'evidence'),
      '--resolve',
      'secure.example.test:127.0.0.1',
    ),
    {},
    [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'sh',
      '-c',
      `mount --bind "$0" ${systemBundle} && exec "$@"`,
      bundle,
    ],
  );
  try {
    const ready = await readyOrExit(cli);
    const target = `secure.example.test:${origin.port}`;
    const { text } = await rawExchange(
      Number(new URL(String(ready.url)).port),
      `GET https://${target}/sys HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(text), 200, text);
    assert.match(text, /secure \/sys$/);
  } finally {
    cli.child.kill('SIGKILL');
    await origin.close();
    cleanup(dir);
  }
});

test('proxy CLI: kill -9 under load leaves evidence whose every line verifies', async () => {
  const origin = await startOrigin(echo);
  await withProxyFor(
    origin,
    ['--resolve', 'api.example.test:127.0.0.1'],
    async ({ cli, evidence, ready }) => {
      const agent = new ProxyAgent({ uri: String(ready.url), proxyTunnel: false, connections: 20 });
      let completed = 0;
      let stop = false;
      const worker = async () => {
        for (let i = 0; i < 5_000 && !stop; i++) {
          try {
            const response = await request(`http://api.example.test:${origin.port}/r/${i}`, {
              dispatcher: agent,
            });
            await response.body.dump();
            if (response.statusCode === 200) completed++;
          } catch {
            return; // the proxy is gone
          }
        }
      };
      try {
        const load = Promise.all(Array.from({ length: 20 }, worker));
        await waitFor(() => completed >= 600, 30_000, '600 proxied requests');
        cli.child.kill('SIGKILL');
        assert.equal((await cli.exited).signal, 'SIGKILL');
        stop = true;
        await load;
        const complete = readCompleteLines(evidence);
        // Only the line being written when the process died may be torn, in the last file.
        assert.ok(
          complete.torn.length === 0 ||
            (complete.torn.length === 1 && complete.torn[0] === complete.files.at(-1)),
          `torn files: ${complete.torn.join(', ')}`,
        );
        assertValid(complete, false);
        assert.ok(
          decisions(complete.receipts).length >= completed,
          'every answered request has its receipt',
        );
        // `verify` reads the killed run as it is: a torn last line is reported, not fatal.
        let verified = '';
        const code = await main(
          ['verify', '--receipt-chain', evidence, '--public-key', String(ready.signer_key)],
          {
            out: (text) => (verified += text),
            err: () => undefined,
            readFile: (path) => readFile(path),
          },
        );
        assert.equal(code, 0, verified);
        assert.match(verified, /^CHAIN VALID: /);
        assert.equal(/Torn tail: /.test(verified), complete.torn.length === 1, verified);
      } finally {
        stop = true;
        await agent.close();
      }
    },
  );
});

test('upstream TLS checks the requested name, not the address it connects to', async () => {
  const origin = await startHttpsOrigin((_req, res) => res.end('should not be read'), pki);
  const proxy = await startEngine({
    policy: `version: "1.0"\negress:\n  - destination: "wrong.example.test"\n    ports: [${origin.port}]\n  - destination: "127.0.0.1"\n    ports: [${origin.port}]\ndefault_deny: true\n`,
    pins: { 'wrong.example.test': '127.0.0.1' },
    upstreamCa: [pki.caCert],
  });
  try {
    // The certificate names secure.example.test and 127.0.0.1, not wrong.example.test.
    const target = `wrong.example.test:${origin.port}`;
    const { text } = await rawExchange(
      proxy.port,
      `GET https://${target}/ HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(text), 502, text);
    assert.match(text, /ERR_TLS_CERT_ALTNAME_INVALID|does not match|altnames/i);
    const ok = await rawExchange(
      proxy.port,
      `GET https://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(ok.text), 200, ok.text);
  } finally {
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('proxy CLI: clients flooding empty WebSocket messages do not hold it: /health answers meanwhile, SIGTERM seals', async () => {
  // The origin takes the messages in a process of its own: this one only writes and asks.
  const sink = spawn(process.execPath, [
    '-e',
    `const { WebSocketServer } = require(${JSON.stringify(join(ROOT, 'node_modules/ws'))});
     const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
     server.on('listening', () => console.log(server.address().port));`,
  ]);
  const dir = tempDir();
  const evidence = join(dir, 'evidence');
  const floods: Socket[] = [];
  let cli: Cli | undefined;
  try {
    const [port] = (await once(sink.stdout, 'data')) as [Buffer];
    const policy = `version: "1.0"
egress:
  - destination: "127.0.0.1:${Number(port)}"
websocket:
  enabled: true
  frame_scan: true
default_deny: true
`;
    cli = runCli(loopbackProxy(policyFile(dir, policy), evidence));
    const ready = await readyOrExit(cli);
    const proxy = new URL(String(ready.url));
    // An empty masked text frame is six bytes: a write of 60 KB holds ten thousand messages.
    const messages = Buffer.concat(
      Array<Buffer>(10_000).fill(Buffer.from([0x81, 0x80, 1, 2, 3, 4])),
    );
    for (let i = 0; i < 8; i++) {
      const socket = connect(Number(proxy.port), '127.0.0.1');
      socket.write(
        `GET /ws?url=ws://127.0.0.1:${Number(port)}/ HTTP/1.1\r\nHost: ${proxy.host}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
      const [answer] = (await once(socket, 'data')) as [Buffer];
      assert.match(answer.toString('latin1'), /^HTTP\/1\.1 101 /);
      floods.push(socket);
    }
    for (const socket of floods) {
      const pump = () => {
        while (!socket.destroyed && socket.write(messages));
      };
      socket.on('drain', pump).on('error', () => undefined);
      pump();
    }
    await delay(1_500);
    const asked = performance.now();
    const health = await request(`${proxy.origin}/health`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    const waited = performance.now() - asked;
    // Judged back to back, the messages read in one turn held the event loop for 10 s and more.
    assert.ok(waited < 3_000, `/health answered after ${waited.toFixed(0)} ms`);
    for (const socket of floods) socket.destroy();
    cli.child.kill('SIGTERM');
    assert.deepEqual(await cli.exited, { code: 0, signal: null }, cli.stderr());
    const read = readEvidenceDir(evidence);
    assertValid(read, true);
    const outcomes = read.receipts
      .map((r) => r.action_record)
      .filter((record) => record.decision_phase === 'outcome');
    assert.equal(outcomes.length, 8);
    for (const { pattern } of outcomes) assert.match(String(pattern), /messages_sent=[1-9]\d* /);
  } finally {
    for (const socket of floods) socket.destroy();
    cli?.child.kill('SIGKILL');
    sink.kill('SIGKILL');
    cleanup(dir);
  }
});
