// `npm run bench` (DESIGN §10): the built engine (dist/cli.js proxy, receipts on) against
// the direct path on loopback, each metric with its own baseline in the same run. Prints a
// table and writes bench/results.json. Needs wrk, curl and openssl (apt-get install wrk), and
// root for the boundary's setup and teardown times.
import { execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { curlWriteOut, run, startWithReadyLine, stop } from './processes.js';
import { benchBoundary } from './boundary.js';
import { benchVerify } from './verify.js';
import { benchDlp } from './dlp.js';
import {
  benchIntercept,
  firstRequestHost,
  FIRST_REQUEST_HOSTS,
  INTERCEPT_DOMAIN,
} from './intercept.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? '5');
const WARMUP_SECONDS = 3;
const TUNNEL_BYTES = 256 * 1024 * 1024;
const DOWNLOADS = 3;
const HOST = 'origin.bench.test';

interface WrkResult {
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

for (const tool of ['wrk', 'curl', 'openssl']) {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' });
  } catch {
    throw new Error(`npm run bench needs ${tool} on PATH (Debian/Ubuntu: apt-get install ${tool})`);
  }
}
if (!existsSync('dist/cli.js'))
  throw new Error('npm run bench measures the built engine: run npm run build first');

const work = await mkdtemp(join(tmpdir(), 'pe-bench-'));
const children: Parameters<typeof stop>[0][] = [];
try {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-keyout',
      join(work, 'key.pem'),
      '-out',
      join(work, 'cert.pem'),
      '-subj',
      `/CN=${HOST}`,
      '-addext',
      `subjectAltName=DNS:${HOST},DNS:${INTERCEPT_DOMAIN},DNS:*.${INTERCEPT_DOMAIN}`,
    ],
    { stdio: 'ignore' },
  );
  const origin = await startWithReadyLine<{ http: number; https: number }>(process.execPath, [
    '--import',
    'tsx',
    'bench/origin.ts',
    join(work, 'key.pem'),
    join(work, 'cert.pem'),
    String(TUNNEL_BYTES),
  ]);
  children.push(origin.child);
  const { http, https } = origin.ready;
  await writeFile(
    join(work, 'policy.yaml'),
    // The origin is on loopback, which the SSRF guard refuses unless a rule names the address.
    `version: "1.0"\negress:\n  - destination: "${HOST}:${http}"\n  - destination: "${HOST}:${https}"\n    tls: passthrough\n` +
      // Rules with methods are intercepted: the engine terminates TLS and judges each request.
      `  - destination: "${INTERCEPT_DOMAIN}:${https}"\n    methods: ["GET"]\n  - destination: "*.${INTERCEPT_DOMAIN}:${https}"\n    methods: ["GET"]\n` +
      `  - destination: "127.0.0.1/32"\n    ports: [${http}, ${https}]\n`,
  );
  const proxy = await startWithReadyLine<{ url: string; ca_cert: string }>(process.execPath, [
    'dist/cli.js',
    'proxy',
    '--policy',
    join(work, 'policy.yaml'),
    '--listen',
    '127.0.0.1:0',
    '--evidence-dir',
    join(work, 'evidence'),
    '--upstream-ca',
    join(work, 'cert.pem'),
    ...[
      HOST,
      INTERCEPT_DOMAIN,
      ...Array.from({ length: FIRST_REQUEST_HOSTS }, (_, i) => firstRequestHost(i)),
    ].flatMap((name) => ['--resolve', `${name}:127.0.0.1`]),
  ]);
  children.push(proxy.child);

  const reference = await startWithReadyLine<{ url: string }>(process.execPath, [
    '--import',
    'tsx',
    'bench/reference-forwarder.ts',
  ]);
  children.push(reference.child);

  const metrics: Record<string, number> = {};
  const rows: string[][] = [];
  // A proxy runs for a whole job: what counts is its steady state, after the JIT has compiled
  // its hot paths. Every path is warmed the same way before anything is measured.
  await wrk(`http://127.0.0.1:${http}/`, undefined, 10, WARMUP_SECONDS);
  await wrk(proxy.ready.url, `http://${HOST}:${http}/`, 10, WARMUP_SECONDS);
  await wrk(reference.ready.url, `http://127.0.0.1:${http}/`, 10, WARMUP_SECONDS);
  for (const connections of [1, 10, 50]) {
    const direct = await wrk(`http://127.0.0.1:${http}/`, undefined, connections);
    const proxied = await wrk(proxy.ready.url, `http://${HOST}:${http}/`, connections);
    metrics[`http.c${connections}.direct_rps`] = round(direct.rps);
    metrics[`http.c${connections}.proxied_rps`] = round(proxied.rps);
    metrics[`http.c${connections}.rps_ratio`] = round(proxied.rps / direct.rps, 3);
    metrics[`http.c${connections}.added_p50_ms`] = round(proxied.p50Ms - direct.p50Ms, 3);
    metrics[`http.c${connections}.added_p99_ms`] = round(proxied.p99Ms - direct.p99Ms, 3);
    rows.push([
      `http c${connections}`,
      `${round(direct.rps)} req/s, p50 ${round(direct.p50Ms, 3)} ms`,
      `${round(proxied.rps)} req/s, p50 ${round(proxied.p50Ms, 3)} ms`,
      `ratio ${round(proxied.rps / direct.rps, 2)}, +${round(proxied.p50Ms - direct.p50Ms, 3)} ms p50`,
    ]);
  }
  const minimal = await wrk(reference.ready.url, `http://127.0.0.1:${http}/`, 50);
  const directC50 = metrics['http.c50.direct_rps'] ?? Number.NaN;
  metrics['http.c50.node_forwarder_rps'] = round(minimal.rps);
  metrics['http.c50.node_forwarder_ratio'] = round(minimal.rps / directC50, 3);
  rows.push([
    'http c50, minimal Node forwarder',
    `${round(directC50)} req/s`,
    `${round(minimal.rps)} req/s (no policy, no evidence)`,
    `ratio ${round(minimal.rps / directC50, 2)}: the best any Node proxy does here`,
  ]);
  const url = `https://${HOST}:${https}/`;
  const ca = join(work, 'cert.pem');
  const directMBps = await download([
    '--resolve',
    `${HOST}:${https}:127.0.0.1`,
    '--cacert',
    ca,
    url,
  ]);
  const tunnelMBps = await download(['--proxy', proxy.ready.url, '--cacert', ca, url]);
  metrics['tunnel.direct_mbps'] = round(directMBps, 1);
  metrics['tunnel.proxied_mbps'] = round(tunnelMBps, 1);
  metrics['tunnel.mbps_ratio'] = round(tunnelMBps / directMBps, 3);
  rows.push([
    'tunnel (MB/s)',
    `${round(directMBps, 1)}`,
    `${round(tunnelMBps, 1)}`,
    `ratio ${round(tunnelMBps / directMBps, 2)}`,
  ]);
  const relayMBps = await download(['--proxy', reference.ready.url, '--cacert', ca, url]);
  metrics['tunnel.node_relay_mbps'] = round(relayMBps, 1);
  metrics['tunnel.node_relay_ratio'] = round(relayMBps / directMBps, 3);
  rows.push([
    'tunnel, minimal Node relay',
    `${round(directMBps, 1)}`,
    `${round(relayMBps, 1)} (no SNI check, no evidence)`,
    `ratio ${round(relayMBps / directMBps, 2)}: the best any Node relay does here`,
  ]);

  const intercept = await benchIntercept(
    work,
    proxy.ready.url,
    https,
    join(work, 'cert.pem'),
    proxy.ready.ca_cert,
  );
  metrics['intercept.c10.direct_rps'] = round(intercept.directRps);
  metrics['intercept.c10.intercepted_rps'] = round(intercept.interceptedRps);
  metrics['intercept.c10.rps_ratio'] = round(intercept.interceptedRps / intercept.directRps, 3);
  metrics['intercept.first_request_p50_ms'] = round(intercept.firstRequestP50Ms, 2);
  metrics['intercept.first_request_direct_p50_ms'] = round(intercept.firstRequestDirectP50Ms, 2);
  rows.push([
    'intercept c10 (curl)',
    `${round(intercept.directRps)} req/s`,
    `${round(intercept.interceptedRps)} req/s`,
    `ratio ${round(intercept.interceptedRps / intercept.directRps, 2)} (target >= 0.4)`,
  ]);
  rows.push([
    'intercept first request',
    `p50 ${round(intercept.firstRequestDirectP50Ms, 2)} ms`,
    `p50 ${round(intercept.firstRequestP50Ms, 2)} ms`,
    'new host: CONNECT, leaf minted, upstream TLS (target <= 5)',
  ]);

  const dlpMicros = benchDlp();
  metrics['dlp.scan_us_per_request'] = round(dlpMicros, 1);
  rows.push(['dlp scan', '', `${round(dlpMicros, 1)} us/request`, 'URL, 10 headers, 4 KiB JSON']);

  const verifyRate = await benchVerify(work);
  metrics['verify.receipts_per_s'] = round(verifyRate);
  rows.push(['verify', '', `${round(verifyRate)} receipts/s`, 'one core']);

  const boundary = await benchBoundary();
  metrics['boundary.setup_ms'] = round(boundary.setupMs, 1);
  metrics['boundary.seal_ms'] = round(boundary.sealMs, 1);
  metrics['boundary.teardown_ms'] = round(boundary.teardownMs, 1);
  rows.push([
    'boundary (median)',
    '',
    `setup ${round(boundary.setupMs)} ms, seal ${round(boundary.sealMs)} ms, teardown ${round(boundary.teardownMs)} ms`,
    'targets: setup <= 500, teardown <= 300',
  ]);

  const results = { node: process.version, cpus: cpus().length, seconds_per_run: SECONDS, metrics };
  await writeFile('bench/results.json', `${JSON.stringify(results, null, 2)}\n`);
  printTable([['measure', 'direct', 'through the engine', 'result'], ...rows]);
  console.log(`\nwrote bench/results.json (${Object.keys(metrics).length} metrics)`);
} finally {
  for (const child of children.reverse()) await stop(child);
  await rm(work, { recursive: true, force: true });
}

async function wrk(
  url: string,
  absoluteTarget: string | undefined,
  connections: number,
  seconds = SECONDS,
): Promise<WrkResult> {
  const script = join(work, 'wrk.lua');
  await writeFile(
    script,
    `${absoluteTarget ? `wrk.path = ${JSON.stringify(absoluteTarget)}\n` : ''}` +
      'done = function(summary, latency, requests)\n' +
      '  io.write(string.format("RESULT %d %d %d %f %f\\n", summary.requests, summary.duration, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))\n' +
      'end\n',
  );
  const output = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', script, url]);
  const match = /RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)/.exec(output);
  if (!match) throw new Error(`unexpected wrk output:\n${output}`);
  const [, requests = '0', durationUs = '1', errors = '0', p50 = '0', p99 = '0'] = match;
  if (Number(errors) > 0)
    throw new Error(
      `wrk saw ${errors} errors or non-2xx answers at ${url} (${absoluteTarget ?? 'direct'})`,
    );
  return {
    rps: (Number(requests) * 1e6) / Number(durationUs),
    p50Ms: Number(p50) / 1000,
    p99Ms: Number(p99) / 1000,
  };
}

/** MB/s of the big download, the median of DOWNLOADS runs (the first one also warms up). */
async function download(curlArgs: readonly string[]): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < DOWNLOADS; i++) {
    const output = await curlWriteOut('%{size_download} %{time_total}', curlArgs);
    const [size = '0', seconds = '1'] = output.trim().split(' ');
    if (Number(size) !== TUNNEL_BYTES)
      throw new Error(`downloaded ${size} bytes, expected ${TUNNEL_BYTES}`);
    rates.push(Number(size) / Number(seconds) / 1e6);
  }
  return rates.sort((x, y) => x - y)[Math.floor(DOWNLOADS / 2)] ?? Number.NaN;
}

function round(value: number, digits = 0): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function printTable(rows: readonly string[][]): void {
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  for (const row of rows)
    console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
}
