// A CONNECT tunnel after admission: answer 200, read the ClientHello and check its SNI
// against the CONNECT host, then (and only then) dial the checked address and relay bytes.

import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHost, type Host } from '../policy/index.js';
import { formatIp, type IpAddress } from '../policy/ip.js';
import { parseNameOrIpv4 } from '../policy/host.js';
import { parseClientHello } from './client-hello.js';
import type { EngineLimits } from './limits.js';

export type HelloCheck =
  { ok: true; hello: Buffer; hidesServerName: boolean } | { ok: false; reason: string };

/** Waits for the ClientHello (within the limit) and checks that it names the CONNECT host. */
export function awaitClientHello(
  client: Duplex,
  head: Buffer,
  host: Host,
  limits: EngineLimits,
): Promise<HelloCheck> {
  return new Promise((resolve) => {
    let buffered = head;
    const finish = (result: HelloCheck) => {
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
          finish({ ok: false, reason: 'the tunnel payload is not TLS; only TLS may be tunnelled' });
          return true;
        case 'malformed':
          finish({ ok: false, reason: `malformed ClientHello: ${parsed.reason}` });
          return true;
        case 'hello': {
          const problem = sniProblem(parsed.serverName, host);
          finish(
            problem === undefined
              ? { ok: true, hello: buffered, hidesServerName: parsed.hidesServerName }
              : { ok: false, reason: problem },
          );
          return true;
        }
      }
    };
    const onData = (chunk: Buffer) => {
      client.pause();
      buffered = Buffer.concat([buffered, chunk]);
      if (!judge()) client.resume();
    };
    const onClose = () =>
      finish({ ok: false, reason: 'the client closed the tunnel before sending a ClientHello' });
    const timer = setTimeout(
      () =>
        finish({ ok: false, reason: `no ClientHello within ${limits.clientHelloTimeoutMs} ms` }),
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

function sniProblem(serverName: string | undefined, host: Host): string | undefined {
  const expected = formatHost(host);
  if (serverName === undefined) {
    return host.kind === 'name' ? `the ClientHello has no SNI; expected ${expected}` : undefined;
  }
  const named = parseNameOrIpv4(serverName);
  const same =
    named.ok &&
    named.host.kind === host.kind &&
    (named.host.kind === 'name'
      ? host.kind === 'name' && named.host.name === host.name
      : formatHost(named.host) === expected);
  return same ? undefined : `SNI ${serverName} does not match the CONNECT host ${expected}`;
}

export interface TunnelResult {
  readonly sent: number;
  readonly received: number;
  readonly reason: string;
}

/** Dials the checked address, replays the ClientHello and relays until either side ends. */
export function relay(
  client: Duplex,
  hello: Buffer,
  address: IpAddress,
  port: number,
  limits: EngineLimits,
): Promise<TunnelResult> {
  return new Promise((resolve) => {
    const upstream: Socket = connect({
      host: formatIp(address),
      port,
      timeout: limits.upstreamTimeoutMs,
    });
    let sent = 0;
    let received = 0;
    let reason = 'complete';
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
      resolve({ sent, received, reason });
    };
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(limits.tunnelIdleMs);
      upstream.write(hello);
      sent += hello.length;
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('timeout', () => end(connected ? 'idle_timeout' : 'upstream_connect_timeout'));
    upstream.on('error', (error: NodeJS.ErrnoException) =>
      end(`upstream_error ${error.code ?? error.message}`),
    );
    client.on('error', () => end('client_error'));
    client.on('data', (chunk: Buffer) => (sent += chunk.length));
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    upstream.on('close', () => {
      client.end();
      // Unpiped from the closed upstream, the client is paused: read on (what it sends has
      // nowhere to go), or its own close is never seen and its socket stays open for good.
      client.resume();
      settle();
    });
    // The client is gone both ways: nothing upstream sends could be delivered any more.
    client.on('close', () => upstream.destroy());
  });
}
