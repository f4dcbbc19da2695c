// Loopback-only network guard for the engine tests. Imported (or loaded with --import into a
// child process) before anything connects: every TCP connect to an address outside
// 127.0.0.0/8 or ::1, and every DNS lookup, throws instead of sending a packet. A regressed
// SSRF check therefore fails its test rather than reaching the network.

import dns from 'node:dns';
import net from 'node:net';
import { syncBuiltinESMExports } from 'node:module';

export const violations: string[] = [];

const GUARDED = Symbol.for('pipelock-egress.test.dial-guard');

function isLoopbackLiteral(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare)) return true;
  if (bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  return /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

function refuse(what: string): never {
  const message = `dial guard: refused ${what} (tests may reach loopback only)`;
  violations.push(message);
  throw new Error(message);
}

const globalState = globalThis as Record<symbol, unknown>;
if (!globalState[GUARDED]) {
  globalState[GUARDED] = true;
  const originalConnect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    // net.connect passes its normalised arguments as one array.
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
    const second = Array.isArray(args[0]) ? (args[0] as unknown[])[1] : args[1];
    if (typeof first === 'object' && first !== null) {
      const options = first as { host?: unknown; path?: unknown };
      if (typeof options.path !== 'string') {
        const host = typeof options.host === 'string' ? options.host : 'localhost';
        if (!isLoopbackLiteral(host)) refuse(`a connection to ${host}`);
      }
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      const host = typeof second === 'string' ? second : 'localhost';
      if (!isLoopbackLiteral(host)) refuse(`a connection to ${host}`);
    }
    return (originalConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;

  const guardLookup = (hostname: unknown): void => {
    if (typeof hostname !== 'string' || !isLoopbackLiteral(hostname))
      refuse(`a DNS lookup of ${String(hostname)}`);
  };
  const originalLookup = dns.lookup;
  dns.lookup = function guardedLookup(hostname: unknown, ...rest: unknown[]) {
    guardLookup(hostname);
    return (originalLookup as (...a: unknown[]) => unknown)(hostname, ...rest);
  } as typeof dns.lookup;
  const originalPromiseLookup = dns.promises.lookup;
  dns.promises.lookup = function guardedPromiseLookup(hostname: unknown, ...rest: unknown[]) {
    try {
      guardLookup(hostname);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return (originalPromiseLookup as (...a: unknown[]) => Promise<unknown>)(hostname, ...rest);
  } as typeof dns.promises.lookup;
  for (const name of ['resolve', 'resolve4', 'resolve6', 'resolveAny'] as const) {
    const original = dns.promises[name] as (...a: unknown[]) => Promise<unknown>;
    (dns.promises as unknown as Record<string, unknown>)[name] = (hostname: unknown) =>
      Promise.reject(new Error(`dial guard: refused dns.${name}(${String(hostname)})`));
    void original;
  }
  syncBuiltinESMExports();
}
