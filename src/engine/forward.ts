// Forwards an admitted absolute-form HTTP request to the address the SSRF guard checked,
// streaming both bodies, with hop-by-hop headers (and those that speak for a hop) removed and
// nothing added.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import { Transform, type Duplex, type Readable, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { IpAddress } from '../policy/ip.js';
import type { EngineLimits } from './limits.js';
import { BLOCK_HEADER, type Refusal } from './refusal.js';
import type { SendUpstream } from './upstream-pools.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/**
 * Headers that speak for a hop: where a request came from (`Forwarded`, `X-Forwarded-*`,
 * `X-Real-IP`, `Via`, the client-address headers of CDNs and balancers) and Pipelock's own
 * hints. Sent by the agent they would be its word passed off as a proxy's, which an origin
 * trusting its proxies believes; so, as Pipelock does, none is forwarded. Spelled with `_` too:
 * CGI and Rack read `X_Forwarded_For` as `X-Forwarded-For`.
 */
const SPEAK_FOR_A_HOP = new Set([
  'forwarded',
  'via',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'pipelock-mediation',
  'x-pipelock-agent',
]);

export function speaksForAHop(lowerName: string): boolean {
  const name = lowerName.replaceAll('_', '-');
  return name.startsWith('x-forwarded-') || SPEAK_FOR_A_HOP.has(name);
}

/**
 * Request headers this hop answers itself: `Expect: 100-continue` was already answered to the
 * client by the engine's HTTP server (and undici refuses to send it).
 */
const ANSWERED_HERE = new Set(['expect']);

/** Removes hop-by-hop headers, including those the Connection header names. */
function endToEndHeaders(rawHeaders: readonly string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === 'connection') {
      for (const token of (rawHeaders[i + 1] ?? '').split(','))
        named.add(token.trim().toLowerCase());
    }
  }
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && !named.has(lower)) kept.push(name, rawHeaders[i + 1] ?? '');
  }
  return kept;
}

/** Every value of a header (name in lowercase) in a flat name, value list. */
function headerValues(flat: readonly string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i]?.toLowerCase() === name) values.push(flat[i + 1] ?? '');
  }
  return values;
}

/** A header's value in a flat name, value list as an origin reads it (repeats joined with `, `). */
export function joinedValue(flat: readonly string[], name: string): string | undefined {
  const values = headerValues(flat, name);
  return values.length === 0 ? undefined : values.join(', ');
}

export interface UpstreamTarget {
  readonly scheme: 'http' | 'https';
  /** The name (or IP text) the client asked for: Host header, SNI and certificate identity. */
  readonly hostname: string;
  readonly authority: string;
  readonly port: number;
  readonly address: IpAddress;
  readonly path: string;
}

class BodyLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) callback(new BodyTooLarge(this.limit));
    else callback(null, chunk);
  }
}

/**
 * The client's connection closed before the answer was complete: the client hung up, or the
 * engine closed it (an idle timeout, or shutdown after its grace period).
 */
class ClientGone extends Error {
  constructor() {
    super('the client connection closed before the answer was complete');
  }
}

class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the request body exceeds ${limit} bytes`);
  }
}

/**
 * How a forward ended: the answer relayed, or why not (as the refusal the client gets, when it
 * is still there to get one).
 */
export type ForwardOutcome =
  { ok: true; status: number; bytes: number } | { ok: false; refusal: Refusal };

export async function forwardRequest(
  req: IncomingMessage,
  res: ServerResponse,
  send: SendUpstream,
  target: UpstreamTarget,
  limits: EngineLimits,
  /** The body, when it was read (and scanned) before the request was admitted. */
  readBody?: Buffer,
): Promise<ForwardOutcome> {
  const body = readBody ?? (hasBody(req) ? req.pipe(new BodyLimit(limits.maxBodyBytes)) : null);
  // A client gone before the answer is complete cancels the upstream request. `finish` comes
  // before `close`, so a completed answer never pays for an abort. undici takes an emitter as
  // its signal: an AbortController costs a DOMException (and its stack trace) per request.
  // The signal's reason is what the cancelled request rejects with.
  const cancel: EventEmitter & { reason?: ClientGone } = new EventEmitter();
  let answered = false;
  // An answer queued behind another one on the connection (pipelining) gets no close of its
  // own when the connection closes: the connection's close says the client is gone too.
  const leave = () => {
    forget();
    if (answered || cancel.reason) return;
    cancel.reason = new ClientGone();
    cancel.emit('abort');
  };
  const forget = whenConnectionCloses(req.socket, leave);
  res.once('finish', () => {
    answered = true;
    forget();
  });
  res.once('close', leave);
  try {
    const response = await send({
      method: req.method ?? 'GET',
      path: target.path,
      headers: ['host', target.authority, ...requestHeaders(req.rawHeaders)],
      body,
      signal: cancel,
    });
    const relayed = bodyToRelay(req.method, response, target);
    if ('refusal' in relayed) return { ok: false, refusal: relayed.refusal };
    res.writeHead(
      response.statusCode,
      reasonPhrase(response.statusText),
      responseHeaders(flatten(response.headers)),
    );
    const bytes = await relayBody(relayed.body, res, cancel);
    return { ok: true, status: response.statusCode, bytes };
  } catch (error) {
    return { ok: false, refusal: describeFailure(error, target, limits) };
  }
}

const connectionClosed = new WeakMap<Duplex, Set<() => void>>();

/**
 * Calls `listener` when the connection closes, unless the returned function is called first.
 * One close listener per connection, however many requests are pipelined on it.
 */
function whenConnectionCloses(socket: Duplex, listener: () => void): () => void {
  let listeners = connectionClosed.get(socket);
  if (listeners === undefined) {
    const waiting = new Set<() => void>();
    listeners = waiting;
    connectionClosed.set(socket, waiting);
    socket.once('close', () => {
      connectionClosed.delete(socket);
      for (const call of waiting) call();
    });
  }
  listeners.add(listener);
  const registered = listeners;
  return () => registered.delete(listener);
}

/**
 * The origin's reason phrase, where undici hands it over as the origin wrote it: it decodes
 * the phrase as UTF-8, so one with other bytes than ASCII text is not; node:http's phrase for
 * the status stands in for it then (a client ignores the phrase, RFC 9112 4).
 */
function reasonPhrase(statusText: string): string | undefined {
  return /^[\t\x20-\x7e]*$/.test(statusText) ? statusText : undefined;
}

/**
 * The upstream body the client gets: none for an answer that has none, or why the answer
 * cannot be relayed. A body not relayed is let go.
 */
function bodyToRelay(
  method: string | undefined,
  response: Dispatcher.ResponseData,
  target: UpstreamTarget,
): { body: Readable | undefined } | { refusal: Refusal } {
  if (answersWithoutBody(method, response.statusCode)) {
    discard(response.body);
    return { body: undefined };
  }
  const refusal = unrelayedCoding(response.headers['transfer-encoding'], target);
  if (refusal === undefined) return { body: response.body };
  discard(response.body);
  return { refusal };
}

/**
 * An answer to HEAD, a 204 and a 304 end with their headers, whatever length they declare
 * (RFC 9112 6.3): a 304's Content-Length is that of the representation it stands for.
 */
function answersWithoutBody(method: string | undefined, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304;
}

/**
 * Lets go of an upstream body that is not relayed. undici holds even an answer without a body
 * to the length it declares: the mismatch it then reports is about nothing the client gets.
 */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Streams the upstream body (none: the answer ends with its head) into the answer; resolves
 * with its size once the answer is finished, rejects when either side fails first (the other
 * side is destroyed with it).
 */
function relayBody(
  source: Readable | undefined,
  res: ServerResponse,
  clientGone: EventEmitter & { reason?: ClientGone },
): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const gone = () => {
      source?.destroy();
      reject(new ClientGone());
    };
    if (clientGone.reason) return gone();
    clientGone.once('abort', gone);
    res.once('finish', () => {
      clientGone.off('abort', gone);
      resolve(bytes);
    });
    if (source === undefined) return void res.end();
    source.on('data', (chunk: Buffer) => (bytes += chunk.length));
    source.once('error', (error) => {
      res.destroy();
      reject(error);
    });
    source.pipe(res);
  });
}

/**
 * Why a request's body cannot be forwarded as judged, before anything is judged: a transfer
 * coding other than `chunked` (node:http undoes only the chunking, so a body sent `gzip,
 * chunked` would reach the scanner still compressed, and the origin without the header that
 * says so), more than one Content-Type (node:http keeps the first, origins may read another
 * or all of them joined), or a declared length over the body limit.
 */
export function framingRefusal(req: IncomingMessage, maxBodyBytes: number): Refusal | undefined {
  const { headers } = req;
  const coding = transferCodings(headers['transfer-encoding']).find((part) => part !== 'chunked');
  if (coding !== undefined) {
    return {
      status: 501,
      layer: 'request',
      reason: `Transfer-Encoding ${coding} is not supported: send the body chunked or with a Content-Length (a Content-Encoding is decoded for scanning)`,
    };
  }
  const types = headerValues(req.rawHeaders, 'content-type').length;
  if (types > 1) {
    return {
      status: 400,
      layer: 'request',
      reason: `the request has ${types} Content-Type headers: send one`,
    };
  }
  const declared = Number(headers['content-length'] ?? '0');
  if (declared > maxBodyBytes) {
    return {
      status: 413,
      layer: 'limit',
      reason: `the request body (${declared} bytes) exceeds ${maxBodyBytes} bytes`,
    };
  }
  return undefined;
}

/** The transfer codings a Transfer-Encoding header lists, in lowercase. */
function transferCodings(header: string | string[] | undefined): string[] {
  return [header ?? '']
    .flat()
    .flatMap((value) => value.split(','))
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part !== '');
}

/**
 * Why an upstream answer in a transfer coding other than chunked (or identity, which is none)
 * is not relayed: undici undoes only the chunking, and the answer goes out chunked again, so
 * the client would take the still compressed bytes for the content.
 */
function unrelayedCoding(
  header: string | string[] | undefined,
  target: UpstreamTarget,
): Refusal | undefined {
  const codings = transferCodings(header);
  if (codings.every((coding) => coding === 'chunked' || coding === 'identity')) return undefined;
  return {
    status: 502,
    layer: 'upstream',
    reason: `upstream ${originName(target)} answered with Transfer-Encoding ${codings.join(', ')}, which the proxy does not relay: it relays only chunked and identity`,
  };
}

export function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined
    ? req.headers['content-length'] !== '0'
    : req.headers['transfer-encoding'] !== undefined;
}

/** Only the engine says a request was blocked: an origin's own block header would pass for one. */
const ENGINE_ONLY = new Set([BLOCK_HEADER.toLowerCase()]);

/**
 * The request headers the origin gets, as a flat name, value list: a Connection header can name
 * any header away, and what the origin does not get (a Content-Type) must not be what a body
 * is judged by.
 */
export const requestHeaders = (raw: readonly string[]): string[] =>
  without(endToEndHeaders(raw), (name) => ANSWERED_HERE.has(name) || speaksForAHop(name));
const responseHeaders = (raw: readonly string[]): string[] =>
  without(endToEndHeaders(raw), (name) => ENGINE_ONLY.has(name));

/** A flat name, value list without the headers `dropped` says (given the lowercase name). */
function without(flat: readonly string[], dropped: (lowerName: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!dropped((flat[i] ?? '').toLowerCase())) out.push(flat[i] ?? '', flat[i + 1] ?? '');
  }
  return out;
}

function flatten(headers: Record<string, string | string[] | undefined>): string[] {
  const flat: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const item of value) flat.push(name, item);
    else if (value !== undefined) flat.push(name, value);
  }
  return flat;
}

/** undici's codes for a connect, headers or body timeout. */
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function describeFailure(error: unknown, target: UpstreamTarget, limits: EngineLimits): Refusal {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  if (cause instanceof BodyTooLarge || error instanceof BodyTooLarge) {
    return { status: 413, layer: 'limit', reason: (cause as BodyTooLarge).message };
  }
  if (error instanceof ClientGone) return { status: 499, layer: 'client', reason: error.message };
  const where = originName(target);
  if (TIMEOUT_CODES.has((error as { code?: unknown } | undefined)?.code as string)) {
    return {
      status: 504,
      layer: 'upstream',
      reason: `upstream ${where} timed out (${(error as Error).message})`,
    };
  }
  const code = (cause as { code?: string } | undefined)?.code;
  if (code === 'UND_ERR_HEADERS_OVERFLOW') {
    return {
      status: 502,
      layer: 'upstream',
      reason: `upstream ${where} answered with headers over the ${limits.maxResponseHeaderBytes} bytes the proxy takes`,
    };
  }
  const message = cause instanceof Error ? cause.message : String(cause);
  return {
    status: 502,
    layer: 'upstream',
    reason: `upstream ${where} failed: ${code ? `${code} ` : ''}${message}`,
  };
}

function originName(target: UpstreamTarget): string {
  return `${target.scheme}://${target.authority}`;
}
