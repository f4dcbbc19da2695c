// Shared fixtures for the engine tests: policies, an engine on a loopback port with a real
// evidence writer, origin servers, a test CA, curl and raw-socket clients, evidence reading.
// Everything stays on loopback (see dial-guard.ts, imported first).

import { violations } from './dial-guard.js';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { agentEnvironment } from '../../src/boundary/agent-env.js';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { EvidenceWriter } from '../../src/engine/evidence-writer.js';
import type { EngineLimits } from '../../src/engine/limits.js';
import { parseNamePins, type NamePin } from '../../src/engine/name-pin.js';
import { createResolver } from '../../src/engine/resolver.js';
import { RunCertificateAuthority } from '../../src/engine/tls/run-ca.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import {
  evidenceFileOrder,
  readEvidenceDirectory,
  verifyEvidence,
  type ActionRecord,
  type EvidenceReport,
  type Receipt,
} from '../../src/receipts/index.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { scratchDir } from '../scratch.js';

export { violations };
export const backend = createNodeBackend();

/** The interception CA of every engine in this test process, and its certificate on disk. */
export const runCa = RunCertificateAuthority.create();
export const runCaFile = join(scratchDir('pe-run-ca-'), 'run-ca.pem');
writeFileSync(runCaFile, runCa.certificatePem);

export function policyFrom(yaml: string): Policy {
  const parsed = parsePolicy(Buffer.from(yaml), 'test-policy.yaml');
  if (!parsed.ok) throw new Error(`test policy invalid: ${JSON.stringify(parsed.errors)}`);
  return parsed.policy;
}

/** `--resolve` pins, host name to address text, as the CLI reads them. */
export function namePins(addresses: Readonly<Record<string, string>>): NamePin[] {
  const pins = parseNamePins(Object.entries(addresses).map(([host, ip]) => `${host}:${ip}`));
  if (typeof pins === 'string') throw new Error(`test pins invalid: ${pins}`);
  return pins;
}

export function tempDir(prefix = 'pe-engine-'): string {
  return scratchDir(prefix);
}

/** A lookup that must never run: every name a test uses is pinned. */
export const lookups: string[] = [];
export const noLookup = (hostname: string): Promise<never> => {
  lookups.push(hostname);
  return Promise.reject(new Error(`test resolver: ${hostname} is not pinned (no DNS in tests)`));
};

export interface RunningEngine {
  readonly engine: Engine;
  readonly writer: EvidenceWriter;
  readonly dir: string;
  readonly port: number;
  readonly proxyUrl: string;
  /** Closes the engine and seals the evidence (idempotent). */
  stop(): Promise<void>;
}

export interface EngineSetup {
  readonly policy: string | Policy;
  readonly pins?: Record<string, string>;
  readonly limits?: Partial<EngineLimits>;
  readonly upstreamCa?: readonly string[];
  readonly dir?: string;
  readonly lookup?: (hostname: string) => Promise<readonly { address: string }[]>;
  readonly secretValues?: Readonly<Record<string, string>>;
  readonly maxEntriesPerFile?: number;
  readonly maxEvidenceFiles?: number;
  readonly onEvidenceError?: EngineOptions['onEvidenceError'];
  readonly onDecision?: EngineOptions['onDecision'];
  readonly onInternalError?: EngineOptions['onInternalError'];
}

export async function startEngine(setup: EngineSetup): Promise<RunningEngine> {
  const policy = typeof setup.policy === 'string' ? policyFrom(setup.policy) : setup.policy;
  const dir = setup.dir ?? join(tempDir(), 'evidence');
  const writer = EvidenceWriter.open({
    dir,
    backend,
    seed: randomBytes(32),
    run: { actor: 'engine-test', policyHash: policy.hash },
    ...(setup.maxEntriesPerFile ? { maxEntriesPerFile: setup.maxEntriesPerFile } : {}),
    ...(setup.maxEvidenceFiles ? { maxFiles: setup.maxEvidenceFiles } : {}),
  }).writer;
  const pins = namePins(setup.pins ?? {});
  const engine = new Engine({
    policy,
    log: writer,
    resolver: createResolver(pins, setup.lookup ?? noLookup),
    ca: runCa,
    version: '0.0.0-test',
    ...(setup.upstreamCa ? { upstreamCa: setup.upstreamCa } : {}),
    ...(setup.limits ? { limits: setup.limits } : {}),
    ...(setup.onEvidenceError ? { onEvidenceError: setup.onEvidenceError } : {}),
    ...(setup.onDecision ? { onDecision: setup.onDecision } : {}),
    ...(setup.onInternalError ? { onInternalError: setup.onInternalError } : {}),
    ...(setup.secretValues ? { secretValues: setup.secretValues } : {}),
  });
  const address = await engine.listen({ host: '127.0.0.1', port: 0 });
  let stopped: Promise<void> | undefined;
  return {
    engine,
    writer,
    dir,
    port: address.port,
    proxyUrl: `http://127.0.0.1:${address.port}`,
    stop() {
      stopped ??= (async () => {
        await engine.close();
        try {
          writer.seal();
        } catch {
          writer.abandon();
        }
      })();
      return stopped;
    },
  };
}

export interface ReadEvidence {
  readonly report: EvidenceReport;
  readonly receipts: readonly Receipt[];
  readonly files: readonly string[];
}

/** Reads and verifies (whole recorder) every evidence file of the directory. */
export function readEvidenceDir(dir: string, wholeRecorder = true): ReadEvidence {
  const files = evidenceFileOrder(readdirSync(dir));
  const read = readEvidenceDirectory(
    files.map((name) => ({ name, content: readFileSync(join(dir, name)) })),
  );
  if (!read.ok) throw new Error(`evidence unreadable: ${read.failure.message}`);
  const report = verifyEvidence(backend, read.value, { wholeRecorder });
  return { report, receipts: read.value.receipts, files };
}

/**
 * After a kill -9: the complete lines of every file, verified. On Linux a fatal signal can cut
 * a write(2) short between pages, so the last line of the file being written may be torn; only
 * that one line may be missing. Returns the verification and the names of torn files.
 */
export function readCompleteLines(dir: string): ReadEvidence & { torn: string[] } {
  const files = evidenceFileOrder(readdirSync(dir));
  const torn: string[] = [];
  const read = readEvidenceDirectory(
    files.map((name) => {
      const content = readFileSync(join(dir, name));
      const end = content.lastIndexOf(0x0a) + 1;
      if (end !== content.length) torn.push(name);
      return { name, content: content.subarray(0, end) };
    }),
  );
  if (!read.ok) throw new Error(`evidence unreadable: ${read.failure.message}`);
  const report = verifyEvidence(backend, read.value, { wholeRecorder: true });
  return { report, receipts: read.value.receipts, files, torn };
}

/** Seals the engine's evidence, verifies it, and returns every action record but session control. */
export async function sealedRecords(proxy: RunningEngine): Promise<ActionRecord[]> {
  await proxy.stop();
  const evidence = readEvidenceDir(proxy.dir);
  assertValid(evidence, true);
  return evidence.receipts
    .map((r) => r.action_record)
    .filter((r) => r.transport !== 'receipt_session');
}

/** Decision receipts (not session control, not tunnel outcomes). */
export function decisions(receipts: readonly Receipt[]): Receipt[] {
  return receipts.filter(
    (r) =>
      r.action_record.transport !== 'receipt_session' &&
      r.action_record.decision_phase !== 'outcome',
  );
}

export function assertValid(evidence: ReadEvidence, sealed: boolean): void {
  assert.equal(evidence.report.valid, true, JSON.stringify(evidence.report.error));
  assert.equal(evidence.report.sealed, sealed);
}

// ---------------------------------------------------------------- origins

export interface Origin {
  readonly server: Server;
  readonly port: number;
  hits: number;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listenOrigin(server: Server): Promise<Origin> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin: Origin = {
    server,
    port: (server.address() as AddressInfo).port,
    hits: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.prependListener('request', () => origin.hits++);
  return origin;
}

export function startOrigin(handler: Handler): Promise<Origin> {
  return listenOrigin(createServer({ keepAliveTimeout: 60_000 }, handler));
}

export function startHttpsOrigin(handler: Handler, tls: TestPki): Promise<Origin> {
  return listenOrigin(createHttpsServer({ key: tls.serverKey, cert: tls.serverCert }, handler));
}

/** Answers with JSON describing the request (method, url, headers, body length). */
export const echo: Handler = (req, res) => {
  let length = 0;
  req.on('data', (chunk: Buffer) => (length += chunk.length));
  req.on('end', () => {
    const body = JSON.stringify({
      method: req.method,
      url: req.url,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      length,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
};

// ---------------------------------------------------------------- PKI

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly caCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
}

/** A CA and a server certificate for the given DNS names (and 127.0.0.1), made with openssl. */
export function makePki(names: readonly string[]): TestPki {
  const dir = tempDir('pe-pki-');
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=pipelock-egress test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    'ca.pem',
  ]);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key']);
  run([
    'req',
    '-new',
    '-key',
    'server.key',
    '-subj',
    `/CN=${names[0] ?? 'origin.test'}`,
    '-out',
    'server.csr',
  ]);
  const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  writeFileSync(
    join(dir, 'ext.cnf'),
    `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.pem',
  ]);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    caCert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    serverKey: readFileSync(join(dir, 'server.key'), 'utf8'),
    serverCert: readFileSync(join(dir, 'server.pem'), 'utf8'),
  };
}

// ---------------------------------------------------------------- clients

export interface CurlResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** Runs curl with a clean environment (no proxy variables, so only --proxy applies). */
export function curl(
  args: readonly string[],
  stdin?: Buffer,
  timeoutMs = 30_000,
): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', String(timeoutMs / 1000), ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tempDir('pe-home-') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.end(stdin);
  });
}

/** curl through the engine, trusting only the run CA (as an agent in the boundary does). */
export function curlTrustingRunCa(
  proxy: RunningEngine,
  args: readonly string[],
): Promise<CurlResult> {
  return curl(['--proxy', proxy.proxyUrl, '--cacert', runCaFile, ...args]);
}

/** Parses `curl -i` output into status, headers (last response) and body. */
export function parseCurlResponse(output: Buffer): {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
} {
  let rest = output;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    assert.ok(end >= 0, `no header block in curl output: ${rest.toString().slice(0, 200)}`);
    const head = rest.subarray(0, end).toString('latin1');
    const body = rest.subarray(end + 4);
    const [statusLine = '', ...lines] = head.split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    // A proxy's "200 Connection established" precedes the tunnelled response.
    if (
      (/^HTTP\/1\.[01] 200 Connection established/i.test(statusLine) || status === 100) &&
      body.length > 0
    ) {
      rest = body;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status, headers, body };
  }
}

/** Writes bytes on a raw connection and collects everything until the peer closes. */
export function rawExchange(
  port: number,
  payload: string | Buffer | readonly (string | Buffer)[],
  timeoutMs = 5_000,
  gapMs = 0,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', async () => {
      const parts = Array.isArray(payload) ? payload : [payload];
      for (const part of parts) {
        if (done) return;
        socket.write(part);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

/** Opens a CONNECT tunnel on a raw socket; resolves with the socket once the answer arrived. */
export function openTunnel(
  port: number,
  target: string,
  head?: Buffer,
): Promise<{ socket: Socket; status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ socket, status: statusOf(text), text });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('connect', () =>
      socket.write(
        Buffer.concat([
          Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
          head ?? Buffer.alloc(0),
        ]),
      ),
    );
  });
}

export function statusOf(raw: string): number {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return match ? Number(match[1]) : 0;
}

/** Waits until the condition holds (bounded), polling. */
export async function waitFor(
  condition: () => boolean,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------- write-ahead check

/**
 * What an origin checks of each request it gets: whether the receipt naming its token
 * (`/r/<token>`) was in the evidence already. Call `follow` once the engine is up.
 */
export class ReceiptWitness {
  /** Tokens that reached the origin before their receipt. */
  readonly early: string[] = [];
  /** Tokens the origin checked. */
  readonly checked: string[] = [];
  private tail: EvidenceTail | undefined;

  follow(dir: string): void {
    this.tail = new EvidenceTail(dir);
  }

  saw(url: string | undefined): void {
    const token = /\/r\/([A-Za-z0-9-]+)/.exec(url ?? '')?.[1];
    if (token === undefined || this.tail === undefined) return;
    this.tail.poll();
    this.checked.push(token);
    if (!this.tail.tokens.has(token)) this.early.push(token);
  }
}

/**
 * Follows the evidence files as they grow (reading only new bytes), collecting the request
 * tokens (`/r/<token>`) named by the receipts written so far.
 */
export class EvidenceTail {
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();
  readonly tokens = new Set<string>();

  constructor(private readonly dir: string) {}

  poll(): void {
    for (const name of evidenceFileOrder(readdirSync(this.dir))) {
      const fd = openSync(join(this.dir, name), 'r');
      try {
        const size = fstatSync(fd).size;
        let offset = this.offsets.get(name) ?? 0;
        if (size <= offset) continue;
        const buffer = Buffer.alloc(size - offset);
        let read = 0;
        while (read < buffer.length) {
          const n = readSync(fd, buffer, read, buffer.length - read, offset + read);
          if (n === 0) break;
          read += n;
        }
        offset += read;
        this.offsets.set(name, offset);
        const text = (this.partial.get(name) ?? '') + buffer.subarray(0, read).toString('utf8');
        const cut = text.lastIndexOf('\n');
        this.partial.set(name, text.slice(cut + 1));
        for (const match of text.slice(0, cut + 1).matchAll(/\/r\/([A-Za-z0-9-]+)/g))
          this.tokens.add(match[1] ?? '');
      } finally {
        closeSync(fd);
      }
    }
  }
}

export function cleanup(...paths: string[]): void {
  for (const path of paths) rmSync(path, { recursive: true, force: true });
}

export function assertNoViolations(): void {
  assert.deepEqual(violations, [], 'the dial guard refused a non-loopback connection');
  assert.deepEqual(lookups, [], 'a name was looked up that no test pinned');
}

/** Whether this Node sends its own fetch through HTTP(S)_PROXY under NODE_USE_ENV_PROXY. */
export function nodeReadsEnvProxy(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major >= 24 || (major === 22 && minor >= 21);
}

const DIAL_GUARD = fileURLToPath(new URL('./dial-guard.ts', import.meta.url));

const GLOBAL_FETCH = `const result = await fetch(process.argv[1]).then(
  async (response) => [response.status, response.headers.get('x-pipelock-egress-block')],
  (error) => ['failed', String(error.cause?.message ?? error.message)],
);
console.log(JSON.stringify(result));`;

/**
 * Node's global fetch of `url` in a child process with the agent's environment (its proxy the
 * engine): the status and block layer, or 'failed' and why. Under the dial guard: a runtime
 * that ignores the proxy variables is refused its direct attempt.
 */
export async function fetchInAgentEnvironment(
  proxy: RunningEngine,
  url: string,
): Promise<[number | 'failed', string | null]> {
  const env = agentEnvironment(
    { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    { proxyUrl: proxy.proxyUrl, home: tmpdir(), user: 'agent', caBundle: runCaFile },
  );
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--import', DIAL_GUARD, '--input-type=module', '-e', GLOBAL_FETCH, url],
    { cwd: process.cwd(), env, timeout: 30_000 },
  );
  return JSON.parse(stdout) as [number | 'failed', string | null];
}
