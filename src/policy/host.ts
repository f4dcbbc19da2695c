// Host canonicalisation: one spelling per host, so that rules and requests compare exactly.
// Names go through the WHATWG host parser (IDNA/UTS-46, case folding, and the IPv4 forms
// decimal, hex, octal and short), then lose one trailing dot.

import { type IpAddress, formatIp, parseDottedIpv4, parseIpv6, ipv6Address } from './ip.js';

export type Host =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'ip'; readonly ip: IpAddress };

export type HostResult = { ok: true; host: Host } | { ok: false; problem: string };

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
// Characters that would make `http://<text>/` parse as something other than a bare host.
const NOT_IN_A_HOST = /[\s/?#@:\\[\]%*]/;

/** A host without brackets: a DNS name (any script) or an IPv4 literal in any notation. */
export function parseNameOrIpv4(text: string): HostResult {
  if (text === '') return { ok: false, problem: 'the host is empty' };
  if (NOT_IN_A_HOST.test(text)) return { ok: false, problem: `"${text}" is not a valid host name` };
  let hostname: string;
  try {
    hostname = new URL(`http://${text}/`).hostname;
  } catch {
    return { ok: false, problem: `"${text}" is not a valid host name or IPv4 address` };
  }
  const v4 = parseDottedIpv4(hostname);
  if (v4 !== undefined) return { ok: true, host: { kind: 'ip', ip: { family: 4, value: v4 } } };
  const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  const problem = nameProblem(name);
  if (problem !== undefined) return { ok: false, problem: `"${text}" ${problem}` };
  return { ok: true, host: { kind: 'name', name } };
}

function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'has no name';
  if (name.length > MAX_NAME_LENGTH) return `is longer than ${MAX_NAME_LENGTH} characters`;
  for (const label of name.split('.')) {
    if (label === '') return 'has an empty label (two dots in a row)';
    if (label.length > MAX_LABEL_LENGTH)
      return `has a label longer than ${MAX_LABEL_LENGTH} characters`;
    if (!LABEL.test(label)) return `has an invalid label "${label}"`;
  }
  return undefined;
}

export type Ipv6Result =
  { ok: true; ip: IpAddress; zone: string | undefined } | { ok: false; problem: string };

/** IPv6 text without brackets; an optional `%zone` (or URL-encoded `%25zone`) is split off. */
export function parseIpv6Literal(text: string): Ipv6Result {
  const zoneAt = text.indexOf('%');
  const address = zoneAt < 0 ? text : text.slice(0, zoneAt);
  let zone: string | undefined;
  if (zoneAt >= 0) {
    zone = text.slice(zoneAt + 1).replace(/^25/, '');
    if (zone === '') return { ok: false, problem: `"${text}" has an empty zone after %` };
  }
  const value = parseIpv6(address);
  if (value === undefined) return { ok: false, problem: `"${text}" is not a valid IPv6 address` };
  return { ok: true, ip: ipv6Address(value), zone };
}

/** The host as it appears in an authority: IPv6 in brackets. */
export function formatHost(host: Host): string {
  if (host.kind === 'name') return host.name;
  return host.ip.family === 6 ? `[${formatIp(host.ip)}]` : formatIp(host.ip);
}
