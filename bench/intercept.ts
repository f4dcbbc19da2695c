// TLS interception through the built engine, measured with curl against the same HTTPS
// origin directly: requests/s at concurrency 10 (curl --parallel, connections reused), and
// the first request to a host the engine has not seen (a CONNECT, a freshly minted leaf, a
// new upstream connection), one curl per host.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { curlWriteOut, run } from './processes.js';

export const INTERCEPT_DOMAIN = 'intercept.bench.test';
/** Hosts under the intercepted domain the first-request measure visits, each once. */
export const FIRST_REQUEST_HOSTS = 40;
const REQUESTS = 2_000;
const WARMUP_REQUESTS = 500;
const CONCURRENCY = 10;

export interface InterceptBench {
  readonly directRps: number;
  readonly interceptedRps: number;
  readonly firstRequestP50Ms: number;
  /** The same first request straight to the origin: this machine's cost of a TLS connection. */
  readonly firstRequestDirectP50Ms: number;
}

export function firstRequestHost(index: number): string {
  return `h${index}.${INTERCEPT_DOMAIN}`;
}

export async function benchIntercept(
  work: string,
  proxyUrl: string,
  httpsPort: number,
  originCa: string,
  runCa: string,
): Promise<InterceptBench> {
  const url = `https://${INTERCEPT_DOMAIN}:${httpsPort}/small`;
  const direct = ['--resolve', `${INTERCEPT_DOMAIN}:${httpsPort}:127.0.0.1`, '--cacert', originCa];
  const intercepted = ['--proxy', proxyUrl, '--cacert', runCa];
  // Warmed first, as the plain HTTP paths are: the engine's TLS paths get compiled.
  await parallelRps(work, 'direct', url, direct, WARMUP_REQUESTS);
  await parallelRps(work, 'intercepted', url, intercepted, WARMUP_REQUESTS);
  const directRps = await parallelRps(work, 'direct', url, direct);
  const interceptedRps = await parallelRps(work, 'intercepted', url, intercepted);
  const firstDirect = await firstRequests(httpsPort, (host) => [
    '--resolve',
    `${host}:${httpsPort}:127.0.0.1`,
    '--cacert',
    originCa,
  ]);
  const firstIntercepted = await firstRequests(httpsPort, () => [
    '--proxy',
    proxyUrl,
    '--cacert',
    runCa,
  ]);
  return {
    directRps,
    interceptedRps,
    firstRequestP50Ms: median(firstIntercepted),
    firstRequestDirectP50Ms: median(firstDirect),
  };
}

/** One curl per host, each host visited once; the time of each whole request in ms. */
async function firstRequests(
  httpsPort: number,
  args: (host: string) => readonly string[],
): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < FIRST_REQUEST_HOSTS; index++) {
    const host = firstRequestHost(index);
    const output = await curlWriteOut('%{time_total}', [
      ...args(host),
      `https://${host}:${httpsPort}/small`,
    ]);
    times.push(Number(output.trim()) * 1000);
  }
  return times;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** `requests` GETs with CONCURRENCY transfers at once in one curl; requests per second. */
async function parallelRps(
  work: string,
  name: string,
  url: string,
  args: readonly string[],
  requests = REQUESTS,
): Promise<number> {
  const config = join(work, `curl-${name}.conf`);
  await writeFile(config, `url = "${url}"\noutput = "/dev/null"\n`.repeat(requests));
  const started = performance.now();
  await run('curl', [
    '-sS',
    '--fail',
    '--parallel',
    '--parallel-max',
    String(CONCURRENCY),
    ...args,
    '-K',
    config,
  ]);
  return requests / ((performance.now() - started) / 1000);
}
