// `host:ip` name pins (like curl's --resolve without the port), from the CLI's --resolve
// and the action's `resolve` input.

import { parseRequestTarget } from '../policy/target.js';

export interface NamePin {
  readonly host: string;
  readonly ip: string;
}

/** `host:ip` (curl's --resolve without the port): the name is answered with that address. */
export function parseNamePin(text: string): NamePin | string {
  const colon = text.indexOf(':');
  const expected = 'expected host:ip, e.g. api.example.test:127.0.0.1 or api.example.test:[::1]';
  if (colon <= 0) return `"${text}" is not host:ip; ${expected}`;
  const host = text.slice(0, colon);
  const ipText = text.slice(colon + 1).replace(/^\[(.*)\]$/, '$1');
  const hostTarget = parseRequestTarget(`${host}:443`);
  if (!hostTarget.ok || hostTarget.target.host.kind !== 'name')
    return `"${host}" is not a host name; ${expected}`;
  const ipTarget = parseRequestTarget(ipText.includes(':') ? `[${ipText}]:443` : `${ipText}:443`);
  if (!ipTarget.ok || ipTarget.target.host.kind !== 'ip' || !/^[0-9a-fA-F.:]+$/.test(ipText)) {
    return `"${ipText}" is not an IP address; ${expected}`;
  }
  return { host: hostTarget.target.host.name, ip: ipText };
}
