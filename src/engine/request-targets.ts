// The absolute target of a request that does not carry one itself: a WebSocket handshake on
// the proxy's own listener (`/ws?url=…`), or a request inside a tunnel the engine serves
// (intercepted TLS, or plain HTTP), whose path is on the CONNECT host. Pure: the engine
// records and answers the refusals (and cuts any secret out of a reason that quotes the
// request before recording it).

import { formatHost, type Host } from '../policy/index.js';
import { parseRequestTarget } from '../policy/target.js';
import type { Refusal } from './refusal.js';
import { cutAt } from '../shorten.js';

export type Located =
  { ok: true; target: string } | { ok: false; target: string; refusal: Refusal };

/** What an intercepted tunnel was admitted to: the only authority its requests may name. */
export interface TunnelAuthority {
  readonly host: Host;
  readonly port: number;
}

/** The scheme of a request inside a tunnel: its TLS intercepted, or plain HTTP. */
export type TunnelScheme = 'https' | 'wss' | 'http' | 'ws';

export function tunnelScheme(tls: boolean, webSocket: boolean): TunnelScheme {
  if (tls) return webSocket ? 'wss' : 'https';
  return webSocket ? 'ws' : 'http';
}

/** The port a scheme's URL and Host header leave out. */
function defaultPort(scheme: TunnelScheme): number {
  return scheme === 'https' || scheme === 'wss' ? 443 : 80;
}

const WS_PROXY_PATH = '/ws?url=';

/**
 * The target of a handshake on the outer listener: `/ws?url=` (the URL given raw or
 * percent-encoded, so an unencoded `&` inside it stays part of it), or an absolute URL.
 */
export function webSocketTarget(url: string): Located {
  let target = url;
  if (url.startsWith(WS_PROXY_PATH)) {
    const given = url.slice(WS_PROXY_PATH.length);
    target = /^wss?%3a/i.test(given) ? safeDecode(given) : given;
  } else if (/^https?:\/\//i.test(url)) {
    target = url.replace(/^https?/i, (scheme) => scheme.toLowerCase().replace('http', 'ws'));
  }
  // A URL parser drops tabs and line breaks and trims spaces: what is judged must be what is
  // sent, so a target holding one is refused, not judged in pieces and sent joined.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\x00-\x20\x7f]/.test(target)) {
    return unparsed(
      'the WebSocket URL holds a space or a control character (a tab, a line break); percent-encode it once more inside /ws?url= (%2520 for a space)',
    );
  }
  // As in a request line, where HTTP allows none: a host that only looks like another
  // (Cyrillic а for a) would be recorded and shown as the one it mimics.
  if (/[^\x21-\x7e]/.test(target)) {
    return unparsed(
      'the WebSocket URL holds a character outside printable ASCII; send it as a URL parser writes it: an international host name in punycode (xn--…), the path percent-encoded',
    );
  }
  if (/^wss?:\/\//i.test(target)) return { ok: true, target };
  return {
    ok: false,
    target: url.startsWith('/') ? 'pipelock://request/unparsed' : url,
    refusal: {
      status: 400,
      layer: 'request',
      reason: url.startsWith(WS_PROXY_PATH)
        ? 'the WebSocket proxy needs /ws?url=ws://… or /ws?url=wss://…'
        : 'a WebSocket handshake goes to /ws?url=ws(s)://… or names an absolute URL',
    },
  };
}

/** A WebSocket target refused before it is judged, recorded as unparsed (it is not quoted). */
function unparsed(reason: string): Located {
  return {
    ok: false,
    target: 'pipelock://request/unparsed',
    refusal: { status: 400, layer: 'request', reason },
  };
}

/** A text that quotes the client: redacted before it is cut short (see `quoted`). */
export type Redact = (text: string) => string;

/** How much of what the client sent a reason quotes. */
const QUOTED_CHARS = 200;

/**
 * The client's text as a reason quotes it: its secrets cut out first, then cut short. Cut
 * first, a secret that spans the cut would leave a piece no redaction recognises.
 */
export function quoted(text: string, redact: Redact): string {
  return cutAt(redact(text), QUOTED_CHARS);
}

/**
 * The absolute target of a request inside a tunnel (its origin-form path on the CONNECT
 * host), or the refusal when it names something else; `redact` cuts secrets out of what the
 * refusal quotes.
 */
export function tunnelTarget(
  url: string,
  hostHeader: string | undefined,
  tunnel: TunnelAuthority,
  scheme: TunnelScheme,
  redact: Redact,
): Located {
  const port = tunnel.port === defaultPort(scheme) ? '' : `:${tunnel.port}`;
  const authority = `${formatHost(tunnel.host)}${port}`;
  if (!url.startsWith('/')) {
    return {
      ok: false,
      target: `${scheme}://${authority}`,
      refusal: {
        status: 400,
        layer: 'request',
        reason: `inside a tunnel a request names a path (origin-form), not "${quoted(url, redact)}"`,
      },
    };
  }
  const target = `${scheme}://${authority}${url}`;
  const problem = hostHeaderProblem(hostHeader, tunnel, scheme, redact);
  if (problem !== undefined)
    return { ok: false, target, refusal: { status: 403, layer: 'host', reason: problem } };
  return { ok: true, target };
}

/**
 * Inside a tunnel the Host header must name the CONNECT target (its port the scheme's default,
 * 443 or 80, when left out).
 */
function hostHeaderProblem(
  header: string | undefined,
  tunnel: TunnelAuthority,
  scheme: TunnelScheme,
  redact: Redact,
): string | undefined {
  const expected = `${formatHost(tunnel.host)}:${tunnel.port}`;
  if (header === undefined) return `the request has no Host header; expected ${expected}`;
  // Only host[:port]: a URL parser would read `evil@api.test` as api.test.
  const parsed = parseRequestTarget(
    `${defaultPort(scheme) === 443 ? 'https' : 'http'}://${header}/`,
  );
  const same =
    !/[@/\\?#\s]/.test(header) &&
    parsed.ok &&
    parsed.target.kind === 'url' &&
    formatHost(parsed.target.host) === formatHost(tunnel.host) &&
    parsed.target.port === tunnel.port;
  return same
    ? undefined
    : `Host ${quoted(header, redact)} does not match the CONNECT target ${expected}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
