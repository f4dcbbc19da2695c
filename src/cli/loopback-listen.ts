// `--listen ADDRESS:PORT` for servers that must never be reachable from another machine.
import { parseRequestTarget } from '../policy/target.js';
import { formatIp } from '../policy/ip.js';
import { specialAddressKind } from '../engine/ssrf.js';
import { UsageError } from './io.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `command` and `server` name who refuses, e.g. `proxy` and `the proxy`. */
export function loopbackListen(command: string, server: string, text: string): ListenAddress {
  const match = /^(.+):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  const target = match ? parseRequestTarget(`${match[1]}:1`) : undefined;
  if (!target?.ok || target.target.kind !== 'authority' || port > 65535) {
    throw new UsageError(`${command}: --listen "${text}" is not ADDRESS:PORT`);
  }
  const { host } = target.target;
  if (host.kind !== 'ip' || specialAddressKind(host.ip) !== 'loopback') {
    throw new UsageError(
      `${command}: --listen ${text}: ${server} listens on a loopback address only (127.0.0.1:PORT or [::1]:PORT)`,
    );
  }
  return { host: formatIp(host.ip), port };
}

export function listenText(listen: ListenAddress): string {
  return `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
}
