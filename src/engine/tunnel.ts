// A CONNECT tunnel after admission: answer 200, read the ClientHello and check its SNI
// against the CONNECT host, then (and only then) dial the checked address and relay bytes.
// A tunnel whose first bytes begin a plain HTTP request is the engine's to serve instead.

import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHost, type Host } from '../policy/index.js';
import { formatIp, type IpAddress } from '../policy/ip.js';
import { parseNameOrIpv4, type HostResult } from '../policy/host.js';
import { parseClientHello, parseClientHelloMessage } from './client-hello.js';
import type { EngineLimits } from './limits.js';
import { requestStart } from './request-start.js';
import { guardedStream, TlsRecordGuard } from './tls-records.js';

/**
 * What the client's first bytes in a tunnel are: a ClientHello naming the CONNECT host, the
 * start of a plain HTTP request (`head`: the bytes read so far), or why the tunnel is refused.
 */
export type TunnelStart =
  | { kind: 'tls'; hello: Buffer; hidesServerName: boolean }
  | { kind: 'http'; head: Buffer }
  | { kind: 'refused'; reason: string };

/**
 * Waits for the client's first bytes (within the ClientHello limit): a ClientHello, checked to
 * name the CONNECT host, or a plain HTTP request's method, whose requests are judged one by one.
 */
export function awaitTunnelStart(
  client: Duplex,
  head: Buffer,
  host: Host,
  limits: EngineLimits,
): Promise<TunnelStart> {
  return new Promise((resolve) => {
    let buffered = head;
    const finish = (result: TunnelStart) => {
      clearTimeout(timer);
      client.off('data', onData);
      client.off('close', onClose);
      client.off('end', onClose);
      resolve(result);
    };
    const judge = (): boolean => {
      const parsed = parseClientHello(buffered);
      switch (parsed.kind) {
        case 'incomplete':
          return false;
        case 'not_tls':
          return judgePlain();
        case 'malformed':
          finish({ kind: 'refused', reason: `malformed ClientHello: ${parsed.reason}` });
          return true;
        case 'hello': {
          const problem = sniProblem(parsed.serverName, host);
          finish(
            problem === undefined
              ? { kind: 'tls', hello: buffered, hidesServerName: parsed.hidesServerName }
              : { kind: 'refused', reason: problem },
          );
          return true;
        }
      }
    };
    const judgePlain = (): boolean => {
      const start = requestStart(buffered);
      if (start === 'incomplete') return false;
      finish(start === 'request' ? { kind: 'http', head: buffered } : NEITHER_TLS_NOR_HTTP);
      return true;
    };
    const onData = (chunk: Buffer) => {
      client.pause();
      buffered = Buffer.concat([buffered, chunk]);
      if (!judge()) client.resume();
    };
    const onClose = () =>
      finish({
        kind: 'refused',
        reason: 'the client closed the tunnel before sending a ClientHello or an HTTP request',
      });
    const timer = setTimeout(
      () =>
        finish({
          kind: 'refused',
          reason: `no ClientHello or HTTP request within ${limits.clientHelloTimeoutMs} ms`,
        }),
      limits.clientHelloTimeoutMs,
    );
    if (judge()) return;
    // A client that hung up (or sent its FIN) during admission can no longer send a hello:
    // its close event may already have passed, so check rather than wait for the timeout.
    if (client.destroyed || client.readableEnded) return onClose();
    client.on('data', onData);
    client.on('close', onClose);
    client.on('end', onClose);
    client.resume();
  });
}

const NEITHER_TLS_NOR_HTTP: TunnelStart = {
  kind: 'refused',
  reason:
    'the tunnel payload is neither TLS nor an HTTP request; only TLS and plain HTTP requests may be tunnelled',
};

function sniProblem(serverName: string | undefined, host: Host): string | undefined {
  const expected = formatHost(host);
  if (serverName === undefined) {
    return host.kind === 'name' ? `the ClientHello has no SNI; expected ${expected}` : undefined;
  }
  // SNI carries no addresses (RFC 6066); one sent anyway must be the address as judged, for
  // an origin reads any other spelling (0x7f.1) as a name of its own.
  const same =
    host.kind === 'ip' ? serverName === expected : sameName(parseNameOrIpv4(serverName), host.name);
  return same ? undefined : `SNI ${serverName} does not match the CONNECT host ${expected}`;
}

function sameName(named: HostResult, name: string): boolean {
  return named.ok && named.host.kind === 'name' && named.host.name === name;
}

/** A later ClientHello in the tunnel must pass what the first did: the same host, no ECH. */
function laterHelloProblem(message: Buffer, host: Host): string | undefined {
  const parsed = parseClientHelloMessage(message);
  if (parsed.kind !== 'hello')
    return `a later ClientHello is malformed${parsed.kind === 'malformed' ? `: ${parsed.reason}` : ''}`;
  if (parsed.hidesServerName)
    return 'a later ClientHello uses Encrypted Client Hello, which hides the server name the tunnel is checked by';
  const problem = sniProblem(parsed.serverName, host);
  return problem === undefined ? undefined : `a later ClientHello: ${problem}`;
}

export interface TunnelResult {
  readonly sent: number;
  readonly received: number;
  readonly reason: string;
  /** Why the engine cut the tunnel: the client sent what is not TLS, or a refused ClientHello. */
  readonly violation: string | undefined;
}

export interface TunnelDestination {
  readonly host: Host;
  readonly address: IpAddress;
  readonly port: number;
}

/**
 * Dials the checked address, replays the ClientHello and relays until either side ends; what
 * the client sends keeps being read as TLS records on the way (see tls-records.ts).
 */
export function relay(
  client: Duplex,
  hello: Buffer,
  destination: TunnelDestination,
  limits: EngineLimits,
): Promise<TunnelResult> {
  return new Promise((resolve) => {
    const upstream: Socket = connect({
      host: formatIp(destination.address),
      port: destination.port,
      timeout: limits.upstreamTimeoutMs,
    });
    const checked = guardedStream(
      new TlsRecordGuard((message) => laterHelloProblem(message, destination.host)),
    );
    let sent = 0;
    let received = 0;
    let reason = 'complete';
    let violation: string | undefined;
    let connected = false;
    let settled = false;
    const end = (why: string) => {
      if (reason === 'complete' && why !== 'complete') reason = why;
      upstream.destroy();
      client.destroy();
    };
    const settle = () => {
      if (settled) return;
      settled = true;
      resolve({ sent, received, reason, violation });
    };
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(limits.tunnelIdleMs);
      checked.pipe(upstream);
      checked.on('data', (chunk: Buffer) => (sent += chunk.length));
      checked.write(hello);
      client.pipe(checked);
      upstream.pipe(client);
    });
    checked.on('error', (error: Error) => {
      violation = error.message;
      end('tls_violation');
    });
    upstream.on('timeout', () => end(connected ? 'idle_timeout' : 'upstream_connect_timeout'));
    upstream.on('error', (error: NodeJS.ErrnoException) =>
      end(`upstream_error ${error.code ?? error.message}`),
    );
    client.on('error', () => end('client_error'));
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    upstream.on('close', () => {
      client.end();
      // Read on, unpiped (what the client sends has nowhere to go): paused, by a pipe that
      // lost its end or by backpressure, its own close is never seen and its socket stays open.
      client.unpipe();
      client.resume();
      settle();
    });
    // The client is gone both ways: nothing upstream sends could be delivered any more.
    client.on('close', () => upstream.destroy());
  });
}
