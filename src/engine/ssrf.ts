// The SSRF guard: a name may resolve to an address the agent must not reach through the
// proxy (the runner's own services, the cloud metadata endpoint, the private network).
// Such addresses pass only when a policy rule that names them as an IP or CIDR allows the
// request itself: its port, path and method. Naming 127.0.0.1:8080 for a stand-in API opens
// that, not every loopback port to any name that resolves there. A CIDR names them only
// from within their range: 0.0.0.0/0 means "the internet", not the metadata endpoint.

import { inspectedOn, ruleAllows } from '../policy/decide.js';
import { hostMatches } from '../policy/destination.js';
import { formatHost } from '../policy/host.js';
import type { RequestTarget } from '../policy/target.js';
import {
  type Cidr,
  type IpAddress,
  cidrContains,
  cidrWithin,
  formatCidr,
  formatIp,
  makeCidr,
  parseDottedIpv4,
  parseIpv6,
  ipv6Address,
} from '../policy/ip.js';
import type { Decision, Policy } from '../policy/index.js';
import type { Refusal } from './refusal.js';

interface SpecialRange {
  readonly cidr: Cidr;
  readonly kind: string;
}

function range(text: string, kind: string): SpecialRange {
  const [address = '', length = ''] = text.split('/');
  const v4 = parseDottedIpv4(address);
  const ip: IpAddress =
    v4 !== undefined ? { family: 4, value: v4 } : { family: 6, value: parseIpv6(address) ?? 0n };
  return { cidr: makeCidr(ip, Number(length)).cidr, kind };
}

// IPv4-mapped IPv6 needs no entry: such addresses are compared as the IPv4 they carry.
const SPECIAL_RANGES: readonly SpecialRange[] = [
  range('0.0.0.0/8', 'unspecified'),
  range('10.0.0.0/8', 'private'),
  range('100.64.0.0/10', 'shared (carrier-grade NAT)'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local (cloud metadata)'),
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'IETF protocol assignments'),
  range('192.0.2.0/24', 'documentation'),
  range('192.168.0.0/16', 'private'),
  range('198.18.0.0/15', 'benchmarking'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'),
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  // After :: and ::1, which it contains.
  range('::/96', 'IPv4-compatible (deprecated, embeds an IPv4 address)'),
  range('::ffff:0:0:0/96', 'IPv4-translated (embeds an IPv4 address)'),
  range('64:ff9b::/96', 'NAT64 (embeds an IPv4 address)'),
  range('64:ff9b:1::/48', 'NAT64 (embeds an IPv4 address)'),
  range('100::/64', 'discard'),
  range('2001::/32', 'Teredo (embeds an IPv4 address)'),
  range('2001:db8::/32', 'documentation'),
  range('2002::/16', '6to4 (embeds an IPv4 address)'),
  range('fc00::/7', 'unique local (private)'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'site-local (deprecated, private)'),
  range('ff00::/8', 'multicast'),
];

function specialRangeOf(ip: IpAddress): SpecialRange | undefined {
  return SPECIAL_RANGES.find((special) => cidrContains(special.cidr, ip));
}

/** Why an address is off-limits by default, or undefined for a public address. */
export function specialAddressKind(ip: IpAddress): string | undefined {
  return specialRangeOf(ip)?.kind;
}

/** Parses an address as a resolver returns it (dotted IPv4 or IPv6 text). */
export function parseResolvedAddress(text: string): IpAddress | undefined {
  const v4 = parseDottedIpv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIpv6(text.replace(/%.*$/, ''));
  return v6 === undefined ? undefined : ipv6Address(v6);
}

/** The request whose resolved addresses are judged, with every method it may be taken for. */
export interface AddressedRequest {
  readonly methods: readonly string[];
  readonly target: RequestTarget;
}

/** The rules naming a special address: the address itself, or a CIDR within its range. */
const rulesNaming = (policy: Policy, ip: IpAddress, special: SpecialRange) =>
  policy.egress.filter((rule) => {
    const host = rule.destination.host;
    return (
      hostMatches(host, { kind: 'ip', ip }) &&
      (host.kind !== 'cidr' || cidrWithin(host.cidr, special.cidr))
    );
  });

/** Rules naming the address allow the request there (a warning in audit mode does not). */
function allowedThere(
  policy: Policy,
  ip: IpAddress,
  special: SpecialRange,
  request: AddressedRequest,
): boolean {
  const naming = rulesNaming(policy, ip, special);
  return request.methods.every((method) =>
    naming.some((rule) => ruleAllows(rule, method, request.target)),
  );
}

/** A rule naming the address that lets the request through there says `scan: true`. */
function scannedThere(
  policy: Policy,
  ip: IpAddress,
  special: SpecialRange,
  request: AddressedRequest,
): boolean {
  return rulesNaming(policy, ip, special).some(
    (rule) =>
      rule.scan && request.methods.some((method) => ruleAllows(rule, method, request.target)),
  );
}

export type AddressCheck =
  | {
      ok: true;
      address: IpAddress;
      /** A rule naming a guarded address the request passes on asks for its content scanned. */
      scan: boolean;
    }
  | { ok: false; reason: string };

/**
 * Judges every address a name resolved to: one forbidden answer blocks the request (a
 * resolver that mixes public and internal answers is how rebinding attacks look). The
 * first address is the one to connect to, so no second lookup can change it.
 */
export function checkResolvedAddresses(
  policy: Policy,
  request: AddressedRequest,
  addresses: readonly IpAddress[],
): AddressCheck {
  const host = formatHost(request.target.host);
  const [first] = addresses;
  if (first === undefined)
    return { ok: false, reason: `SSRF check failed: ${host} resolved to no address` };
  let scan = false;
  for (const ip of addresses) {
    const special = specialRangeOf(ip);
    if (special === undefined) continue;
    if (!allowedThere(policy, ip, special, request)) {
      return {
        ok: false,
        reason: `SSRF blocked: ${host} resolves to ${special.kind} address ${formatIp(ip)}; only a rule naming that address (the IP, or a CIDR within ${formatCidr(special.cidr)}) that allows this request lets it through`,
      };
    }
    scan ||= scannedThere(policy, ip, special, request);
  }
  return { ok: true, address: first, scan };
}

/**
 * Whether a tunnel to this address must be intercepted whatever the name it was asked for: a
 * loopback or private address passes the guard only on the rules naming it, and where those
 * judge methods, paths or content, they can do so only inside TLS. The address's kind if so.
 */
export function interceptedForAddress(
  policy: Policy,
  ip: IpAddress,
  port: number,
): string | undefined {
  const kind = specialAddressKind(ip);
  return kind !== undefined && inspectedOn(policy, { kind: 'ip', ip }, port) ? kind : undefined;
}

/**
 * A `tls: passthrough` tunnel to an address that needs interception (see above): the rules
 * naming the address could judge nothing inside it, so it is refused.
 */
export function passthroughToGuardedAddress(
  decision: Decision,
  address: { ip: IpAddress; kind: string; port: number },
): Refusal {
  const { ip, kind, port } = address;
  const host = decision.target === undefined ? formatIp(ip) : formatHost(decision.target.host);
  const passthrough = decision.rule === undefined ? 'its rule' : `egress[${decision.rule.index}]`;
  return {
    status: 403,
    layer: 'ssrf',
    reason: `SSRF blocked: ${host} resolves to ${kind} address ${formatIp(ip)}, whose rules judge methods, paths or content on port ${port}, which only an intercepted tunnel lets them do; ${passthrough} says "tls: passthrough"`,
  };
}
