// What a request asks to reach: an absolute URL, or the host:port of a CONNECT tunnel.

import { type Host, parseIpv6Literal, parseNameOrIpv4 } from './host.js';
import { DEFAULT_PORTS, type UrlScheme } from './destination.js';

export type RequestTarget =
  | {
      readonly kind: 'url';
      /** ws and wss are judged as http and https. */
      readonly scheme: UrlScheme;
      readonly host: Host;
      readonly port: number;
      /** WHATWG-parsed path: dot segments resolved, percent-encoding kept. */
      readonly pathname: string;
      /** The query with its `?`, or empty. */
      readonly search: string;
      /** As the URL spells them (IPv6 in brackets), for the Host header and TLS name. */
      readonly hostname: string;
      readonly authority: string;
    }
  | { readonly kind: 'authority'; readonly host: Host; readonly port: number };

export type TargetResult = { ok: true; target: RequestTarget } | { ok: false; problem: string };

const SCHEMES: Record<string, UrlScheme> = {
  'http:': 'http',
  'https:': 'https',
  'ws:': 'http',
  'wss:': 'https',
};

/** `https://host/path` (also http, ws, wss) or `host:port` / `[v6]:port`. */
export function parseRequestTarget(text: string): TargetResult {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? parseUrlTarget(text) : parseAuthorityTarget(text);
}

function parseUrlTarget(text: string): TargetResult {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, problem: `"${text}" is not a valid URL` };
  }
  const scheme = SCHEMES[url.protocol];
  if (scheme === undefined)
    return {
      ok: false,
      problem: `scheme "${url.protocol.slice(0, -1)}" is not http, https, ws or wss`,
    };
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const host = url.hostname.startsWith('[') ? ipv6Host(hostname) : parseNameOrIpv4(hostname);
  if (!host.ok) return host;
  const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
  return {
    ok: true,
    target: {
      kind: 'url',
      scheme,
      host: host.host,
      port,
      pathname: url.pathname,
      search: url.search,
      hostname: url.hostname,
      authority: url.host,
    },
  };
}

/** `scheme://` and the authority of an absolute URL, ended where a URL parser ends it. */
const URL_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/\\?#]*/i;
const EXTRA_SLASH = /^[a-z][a-z0-9+.-]*:\/\/[/\\]/i;

/**
 * The path and query of an absolute URL as the request spells them: what its origin-form
 * request line carries (an empty path as `/`, RFC 9112 3.2.1).
 */
export function originForm(url: string): string {
  const rest = url.replace(URL_ORIGIN, '');
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/**
 * Why an absolute URL cannot be sent as spelled and still be the URL judged: the rules judge
 * the path with its dot segments resolved and `\` read as `/`, as a URL parser reads it, and a
 * server that reads the spelling as it stands would route by another path. A fragment is not
 * part of a request at all.
 */
export function spellingProblem(url: string): string | undefined {
  // A URL parser skips any further slashes before the host (http:///x@host/ is host "host");
  // the spelling's path would then begin with what the parser took for the authority.
  if (EXTRA_SLASH.test(url))
    return 'the URL has more than two slashes before its host, which a URL parser skips and a server reads as the path; send scheme://host/path';
  const rest = url.replace(URL_ORIGIN, '');
  if (rest.includes('#'))
    return 'a URL sent in a request has no #fragment (the client keeps it); send it without';
  const path = rest.split('?', 1)[0] ?? '';
  if (path.includes('\\'))
    return 'the path holds a backslash, which some servers read as "/" and others do not; send "/" or %5C';
  if (/(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i.test(path))
    return 'the path holds a dot segment ("." or "..", encoded or not), which servers resolve or not; send the path resolved (curl resolves it unless --path-as-is)';
  return undefined;
}

function parseAuthorityTarget(text: string): TargetResult {
  const match = /^(\[[^\]]*\]|[^:[\]]+):([0-9]{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) {
    return { ok: false, problem: `"${text}" is neither a URL (https://host/path) nor host:port` };
  }
  const hostText = match[1] ?? '';
  const host = hostText.startsWith('[')
    ? ipv6Host(hostText.slice(1, -1))
    : parseNameOrIpv4(hostText);
  return host.ok ? { ok: true, target: { kind: 'authority', host: host.host, port } } : host;
}

/** A zone (`%eth0`) only picks an interface; the rules judge the address. */
function ipv6Host(text: string): { ok: true; host: Host } | { ok: false; problem: string } {
  const parsed = parseIpv6Literal(text);
  return parsed.ok ? { ok: true, host: { kind: 'ip', ip: parsed.ip } } : parsed;
}
