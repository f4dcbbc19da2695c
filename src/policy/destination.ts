// The destination forms of an egress rule, parsed once into canonical values.

import {
  type Cidr,
  type IpAddress,
  formatCidr,
  makeCidr,
  maxPrefixLength,
  cidrContains,
  cidrsOverlap,
  parseDottedIpv4,
  sameIp,
} from './ip.js';
import { type Host, formatHost, parseIpv6Literal, parseNameOrIpv4 } from './host.js';
import { rulePathProblem } from './path.js';

export type HostPattern =
  | { readonly kind: 'exact'; readonly host: Host }
  | { readonly kind: 'wildcard'; readonly suffix: string }
  | { readonly kind: 'cidr'; readonly cidr: Cidr };

export type UrlScheme = 'http' | 'https';

export interface Destination {
  readonly host: HostPattern;
  /** Set by `host:port` and by URL prefixes (their explicit or default port). */
  readonly port: number | undefined;
  readonly url: { readonly scheme: UrlScheme; readonly pathPrefix: string } | undefined;
  /** Canonical text: equal for two spellings of the same destination. */
  readonly canonical: string;
}

export type DestinationResult =
  { ok: true; destination: Destination } | { ok: false; problem: string };

const FORMS =
  'expected a host (api.github.com), "*.example.com", host:port, an IP address, a CIDR ' +
  '(10.0.0.0/8) or a URL prefix (https://api.github.com/repos/acme/)';

export const DEFAULT_PORTS: Record<UrlScheme, number> = { http: 80, https: 443 };

export function parseDestination(text: string): DestinationResult {
  if (text.trim() === '') return unrecognised('the destination is empty');
  if (text !== text.trim()) return failWith(`"${text}" has leading or trailing spaces`);
  if (text.includes('://')) return parseUrlPrefix(text);
  if (text.includes('/')) return schemeMissing(text) ?? parseCidr(text);
  if (text.startsWith('[')) return parseBracketedIpv6(text);
  if ((text.match(/:/g) ?? []).length >= 2) return parseBareIpv6(text);
  return parseHostAndPort(text);
}

function parseHostAndPort(text: string): DestinationResult {
  const colon = text.lastIndexOf(':');
  const hostText = colon < 0 ? text : text.slice(0, colon);
  const port = colon < 0 ? undefined : parsePort(text.slice(colon + 1));
  if (port === null)
    return failWith(
      `"${text.slice(colon + 1)}" is not a port number; expected 1-65535, in decimal without leading zeros`,
    );
  if (hostText.startsWith('*.')) {
    const suffix = parseNameOrIpv4(hostText.slice(2));
    if (!suffix.ok) return failWith(`wildcard "${hostText}": after "*." ${suffix.problem}`);
    if (suffix.host.kind !== 'name')
      return failWith(`"${hostText}": a wildcard cannot cover an IP address`);
    return made({ kind: 'wildcard', suffix: suffix.host.name }, port, undefined);
  }
  if (hostText.includes('*')) {
    return failWith(
      `"${hostText}": "*" is only allowed as a whole leading label ("*.example.com")`,
    );
  }
  const host = parseNameOrIpv4(hostText);
  if (!host.ok) return unrecognised(host.problem);
  const spelling = ipv4SpellingProblem(hostText, host.host);
  if (spelling !== undefined) return failWith(spelling);
  return made({ kind: 'exact', host: host.host }, port, undefined);
}

/**
 * Why `text`, read as `host`, is no way to write an IPv4 address: anything but dotted decimal.
 * URL parsers read "010.0.0.1" as 8.0.0.1 and "10.1" as 10.0.0.1: a policy says which it means.
 */
export function ipv4SpellingProblem(text: string, host: Host): string | undefined {
  if (host.kind !== 'ip') return undefined;
  const written = formatHost(host);
  if (written === text) return undefined;
  if (text === `${written}.`)
    return `"${text}": an IP address takes no trailing dot; write "${written}"`;
  return `"${text}" is read as the IPv4 address ${written} (leading zeros mean octal, 0x hex, and missing parts are filled with zeros); write the address in dotted decimal, "${written}" or the one you meant`;
}

function parseBracketedIpv6(text: string): DestinationResult {
  const close = text.indexOf(']');
  if (close < 0) return failWith(`"${text}" has no closing "]"`);
  const rest = text.slice(close + 1);
  let port: number | undefined;
  if (rest !== '') {
    const parsed = rest.startsWith(':') ? parsePort(rest.slice(1)) : null;
    if (parsed === null)
      return failWith(
        `"${rest}" after "]" is not ":<port>" (1-65535, in decimal without leading zeros)`,
      );
    port = parsed;
  }
  const ip = ipv6WithoutZone(text.slice(1, close));
  return typeof ip === 'string'
    ? failWith(ip)
    : made({ kind: 'exact', host: { kind: 'ip', ip } }, port, undefined);
}

/**
 * A URL written without its "//" (`https:/api.github.com/`) or without its scheme
 * (`api.github.com/repos/acme/`), which would otherwise be read as a CIDR.
 */
function schemeMissing(text: string): DestinationResult | undefined {
  const beforeSlash = text.slice(0, text.indexOf('/'));
  if (/^https?:$/i.test(beforeSlash))
    return failWith(
      `"${text}" has one "/" after "${beforeSlash}"; write "${beforeSlash}//${text.slice(beforeSlash.length).replace(/^\/+/, '')}"`,
    );
  // `example.com/8` is a CIDR attempt, and refused as one.
  const cidrLength = /^[0-9]+$/.test(text.slice(beforeSlash.length + 1));
  const host = parseNameOrIpv4(beforeSlash.replace(/:[0-9]*$/, ''));
  if (!cidrLength && host.ok && host.host.kind === 'name')
    return failWith(
      `"${text}" is a host and a path without a scheme; write "https://${text}" (or http://) for a URL prefix, or "${beforeSlash}" for every path of the host`,
    );
  return undefined;
}

function parseBareIpv6(text: string): DestinationResult {
  if (!/^[0-9a-f:.%]+$/i.test(text.split('%', 1)[0] ?? ''))
    return failWith(
      `"${text}" has more than one ":"; expected host:port with one port, or an IPv6 address`,
    );
  const parsed = parseIpv6Literal(text);
  if (!parsed.ok) return failWith(`${parsed.problem} (write IPv6 with a port as [addr]:port)`);
  const ip = withoutZone(text, parsed);
  if (typeof ip === 'string') return failWith(ip);
  return made({ kind: 'exact', host: { kind: 'ip', ip } }, undefined, undefined);
}

function ipv6WithoutZone(text: string): IpAddress | string {
  const parsed = parseIpv6Literal(text);
  return parsed.ok ? withoutZone(text, parsed) : parsed.problem;
}

function withoutZone(
  text: string,
  parsed: { ip: IpAddress; zone: string | undefined },
): IpAddress | string {
  if (parsed.zone !== undefined)
    return `"${text}": zone identifiers (%${parsed.zone}) are not allowed in a policy`;
  return parsed.ip;
}

function parseCidr(text: string): DestinationResult {
  const slash = text.lastIndexOf('/');
  const addressText = text.slice(0, slash).replace(/^\[(.*)\]$/, '$1');
  const lengthText = text.slice(slash + 1);
  let ip: IpAddress;
  if (addressText.includes(':')) {
    const v6 = ipv6WithoutZone(addressText);
    if (typeof v6 === 'string') return failWith(`invalid CIDR "${text}": ${v6}`);
    ip = v6;
  } else {
    // Strict dotted decimal: in "010.0.0.0/8" or "10/8" the other notations hide a different network.
    const v4 = parseDottedIpv4(addressText);
    if (v4 === undefined) {
      return failWith(
        `invalid CIDR "${text}": "${addressText}" is not an IPv4 address in dotted decimal (a.b.c.d, no leading zeros)`,
      );
    }
    ip = { family: 4, value: v4 };
  }
  // An IPv4-mapped IPv6 base was turned into IPv4 above; its prefix length follows.
  const mappedOffset = addressText.includes(':') && ip.family === 4 ? 96 : 0;
  const max = maxPrefixLength(ip.family) + mappedOffset;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > max) {
    return failWith(`invalid CIDR "${text}": prefix length must be a number from 0 to ${max}`);
  }
  const prefixLength = Number(lengthText) - mappedOffset;
  if (prefixLength < 0)
    return failWith(`invalid CIDR "${text}": it reaches outside the IPv4-mapped range`);
  const { cidr, hostBitsSet } = makeCidr(ip, prefixLength);
  if (hostBitsSet)
    return failWith(
      `invalid CIDR "${text}": host bits are set (did you mean "${formatCidr(cidr)}"?)`,
    );
  return made({ kind: 'cidr', cidr }, undefined, undefined);
}

function parseUrlPrefix(text: string): DestinationResult {
  const schemeText = text.slice(0, text.indexOf('://')).toLowerCase();
  if (schemeText !== 'http' && schemeText !== 'https') {
    return failWith(
      `URL prefix "${text}" has scheme "${schemeText}"; only http and https are allowed (wss uses https rules)`,
    );
  }
  if (text.includes('?') || text.includes('#')) {
    return failWith(
      `URL prefix "${text}" has a query or fragment; a prefix is scheme, host and path only`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return failWith(`"${text}" is not a valid URL`);
  }
  if (url.username !== '' || url.password !== '')
    return failWith(`URL prefix "${text}" must not contain credentials`);
  const afterScheme = text.slice(text.indexOf('://') + 3);
  const slash = afterScheme.indexOf('/');
  const authority = slash < 0 ? afterScheme : afterScheme.slice(0, slash);
  const rawPath = slash < 0 ? '/' : afterScheme.slice(slash);
  const pathProblem = rulePathProblem(rawPath);
  if (pathProblem !== undefined) return failWith(`URL prefix path "${rawPath}" ${pathProblem}`);
  const hostPart = parseHostAndPortOf(authority);
  if (!hostPart.ok) return hostPart;
  const { host } = hostPart.destination;
  if (host.kind !== 'exact')
    return failWith(`URL prefix "${text}" must name one host, not a wildcard`);
  const port = hostPart.destination.port ?? DEFAULT_PORTS[schemeText];
  return made(host, port, { scheme: schemeText, pathPrefix: rawPath });
}

function parseHostAndPortOf(authority: string): DestinationResult {
  return authority.startsWith('[') ? parseBracketedIpv6(authority) : parseHostAndPort(authority);
}

function parsePort(text: string): number | null {
  // No leading zeros: YAML 1.1 tools read 0443 as octal (291).
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function failWith(problem: string): DestinationResult {
  return { ok: false, problem };
}

function unrecognised(problem: string): DestinationResult {
  return { ok: false, problem: `${problem}; ${FORMS}` };
}

/** The canonical text of a host pattern: equal for two spellings of the same hosts. */
export function hostPatternText(host: HostPattern): string {
  if (host.kind === 'exact') return formatHost(host.host);
  return host.kind === 'wildcard' ? `*.${host.suffix}` : formatCidr(host.cidr);
}

function made(
  host: HostPattern,
  port: number | undefined,
  url: Destination['url'],
): DestinationResult {
  const hostText = hostPatternText(host);
  const canonical = url
    ? `${url.scheme}://${hostText}${port === DEFAULT_PORTS[url.scheme] ? '' : `:${port}`}${url.pathPrefix}`
    : port === undefined
      ? hostText
      : `${hostText}:${port}`;
  return { ok: true, destination: { host, port, url, canonical } };
}

/** Whether some host matches both patterns. */
export function patternsOverlap(a: HostPattern, b: HostPattern): boolean {
  if (a.kind === 'exact') return hostMatches(b, a.host);
  if (b.kind === 'exact') return hostMatches(a, b.host);
  if (a.kind === 'wildcard' && b.kind === 'wildcard')
    return `.${a.suffix}`.endsWith(`.${b.suffix}`) || `.${b.suffix}`.endsWith(`.${a.suffix}`);
  if (a.kind === 'cidr' && b.kind === 'cidr') return cidrsOverlap(a.cidr, b.cidr);
  return false; // names and addresses: a request names one or the other
}

export function hostMatches(pattern: HostPattern, host: Host): boolean {
  switch (pattern.kind) {
    case 'exact':
      if (pattern.host.kind === 'name')
        return host.kind === 'name' && host.name === pattern.host.name;
      return host.kind === 'ip' && sameIp(host.ip, pattern.host.ip);
    case 'wildcard':
      return host.kind === 'name' && host.name.endsWith(`.${pattern.suffix}`);
    case 'cidr':
      return host.kind === 'ip' && cidrContains(pattern.cidr, host.ip);
  }
}
