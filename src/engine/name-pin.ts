// `host:ip` name pins (like curl's --resolve without the port), from the CLI's --resolve
// and the action's `resolve` input.

import { ipv4SpellingProblem } from '../policy/destination.js';
import { parseNameOrIpv4 } from '../policy/host.js';
import { sameIp, type IpAddress } from '../policy/ip.js';
import { parseRequestTarget } from '../policy/target.js';
import { parseResolvedAddress } from './ssrf.js';

export interface NamePin {
  readonly host: string;
  readonly address: IpAddress;
}

const EXPECTED = 'expected host:ip, e.g. api.example.test:127.0.0.1 or api.example.test:[::1]';

/** `host:ip` (curl's --resolve without the port): the name is answered with that address. */
export function parseNamePin(text: string): NamePin | string {
  const colon = text.indexOf(':');
  if (colon <= 0) return `"${text}" is not host:ip; ${EXPECTED}`;
  const host = text.slice(0, colon);
  const ip = text.slice(colon + 1).replace(/^\[(.*)\]$/, '$1');
  const hostTarget = parseRequestTarget(`${host}:443`);
  if (!hostTarget.ok || hostTarget.target.host.kind !== 'name')
    return `"${host}" is not a host name; ${EXPECTED}`;
  const address = pinnedAddress(ip);
  if (address === undefined) return curlFormProblem(text, host, ip) ?? addressProblem(ip);
  return { host: hostTarget.target.host.name, address };
}

/** curl's `host:port:address`: a pin here holds for every port, so the port goes. */
function curlFormProblem(text: string, host: string, rest: string): string | undefined {
  const curl = /^[0-9]{1,5}:(.+)$/.exec(rest);
  const address = curl?.[1];
  if (address === undefined || pinnedAddress(address.replace(/^\[(.*)\]$/, '$1')) === undefined)
    return undefined;
  return `"${text}" is curl's host:port:address; a pin here holds for every port of the name: write ${host}:${address}`;
}

/** Pins given together; a name pinned to two addresses is refused: which one would be meant? */
export function parseNamePins(texts: readonly string[]): NamePin[] | string {
  const pins: { readonly pin: NamePin; readonly text: string }[] = [];
  for (const text of texts) {
    const pin = parseNamePin(text);
    if (typeof pin === 'string') return pin;
    const other = pins.find(
      (given) => given.pin.host === pin.host && !sameIp(given.pin.address, pin.address),
    );
    if (other !== undefined)
      return `${other.text} and ${text} pin ${pin.host} to two addresses; keep the one you mean`;
    pins.push({ pin, text });
  }
  return pins.map(({ pin }) => pin);
}

/**
 * The address a pin's text names, as the engine answers with it: IPv4 in dotted decimal or
 * IPv6, without a zone; undefined for anything else.
 */
function pinnedAddress(text: string): IpAddress | undefined {
  return text.includes('%') ? undefined : parseResolvedAddress(text);
}

/**
 * Why `text` is no address to pin. An IPv4 address in another notation (127.1, 2130706433,
 * 010.0.0.1) is read as a URL parser reads it, and refused as a policy refuses it.
 */
function addressProblem(text: string): string {
  const read = parseNameOrIpv4(text);
  const spelling = read.ok ? ipv4SpellingProblem(text, read.host) : undefined;
  return spelling ?? `"${text}" is not an IP address; ${EXPECTED}`;
}
