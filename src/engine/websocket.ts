// The WebSocket relay: a handshake admitted like any request (transport `websocket`), an
// upstream connection to the checked address, then messages relayed both ways. Client
// messages are scanned when the policy asks (`frame_scan`) or a bound secret must be kept
// from the destination; a finding closes both sides with 1008 and a block receipt.

import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import { formatIp } from '../policy/ip.js';
import type { RequestTarget } from '../policy/index.js';
import {
  admit,
  dlpRefusal,
  type AdmissionContext,
  type AdmissionRequest,
  type Inspection,
  withAskedOverrides,
} from './admission.js';
import { outcomeOf, type DecisionEntry } from './decision-log.js';
import type { ContentScans } from './dlp/content-scans.js';
import { forwarder, type MessageBudget } from './message-relay.js';
import { speaksForAHop } from './forward.js';
import { headerViews } from './dlp/content-views.js';
import { refuseSocket, type Refusal } from './refusal.js';

export interface WebSocketContext {
  readonly admission: AdmissionContext;
  /** `websocket.frame_scan`: the detectors read client text messages. */
  readonly frameScan: boolean;
  /** The trust store for upstream `wss://`. */
  readonly trust: () => SecureContext;
  /** A message (fragments reassembled) larger than this closes the connection (1009). */
  readonly maxMessageBytes: number;
  readonly handshakeTimeoutMs: number;
  /** A WebSocket with no traffic either way is closed after this. */
  readonly idleMs: number;
  /** Scans messages: large ones off the event loop. */
  readonly scans: ContentScans;
  /** Bytes of messages all relays together may hold waiting. */
  readonly messageBudget: MessageBudget;
  /** Appends a receipt; a failure is reported, never thrown. */
  readonly record: (entry: DecisionEntry) => Promise<void>;
  /** Called with a handshake's client socket, so that a shutdown can close it. */
  readonly track: (socket: Duplex) => () => void;
}

/** Handshake headers that belong to this hop's handshake, never forwarded as they are. */
const HANDSHAKE_HEADERS = new Set([
  'host',
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'proxy-authorization',
  'proxy-connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
]);

const POLICY_VIOLATION = 1008;
const GOING_AWAY = 1001;

/** How much of the messages before, and of the next one, are read as one text. */
const SEAM_CHARS = 1024;
const JOINED_MESSAGES = 'WebSocket messages (joined with the ones before)';

let ws: Promise<typeof import('ws')> | undefined;

/** Loaded on the first handshake, so that the engine's start does not wait for it. */
function loadWs(): Promise<typeof import('ws')> {
  return (ws ??= import('ws'));
}

/** Serves one WebSocket handshake (`/ws?url=`, a forward-proxy upgrade, or inside a tunnel). */
export async function relayWebSocket(
  context: WebSocketContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  request: AdmissionRequest,
): Promise<void> {
  // node:http hands an upgraded socket over without an error listener: a reset while it is
  // answered would otherwise end the engine.
  socket.on('error', () => socket.destroy());
  // Tracked throughout, so that a shutdown ends a handshake (or an origin's dial) at once.
  const untrack = context.track(socket);
  try {
    await relayTracked(context, req, socket, head, request);
  } finally {
    untrack();
  }
}

async function relayTracked(
  context: WebSocketContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  request: AdmissionRequest,
): Promise<void> {
  const forwarded = forwardedHeaders(req.rawHeaders);
  const protocols = protocolList(req.headers['sec-websocket-protocol']);
  const asked = withAskedOverrides(request, { parsed: req.headers, raw: req.rawHeaders });
  const scanner = context.admission.scanner;
  let scanMessages = false;
  let reach: readonly RequestTarget[] = [];
  const inspect: Inspection = async (decision, scope) => {
    reach = scope.reach;
    const problem =
      handshakeProblem(req, protocols) ??
      reencodedProblem(request.target) ??
      ('problem' in asked ? asked.problem : undefined);
    if (problem) return { refusal: { status: 400, layer: 'request', reason: problem } };
    scanMessages = context.frameScan || scanner.guards(reach);
    // The subprotocols go on too (as the upstream handshake's own header): scanned with the rest.
    const sent = [...forwarded, ...protocols.flatMap((name) => ['Sec-WebSocket-Protocol', name])];
    // The handshake is the WebSocket's first message: frame_scan reads it as it reads the rest.
    const finding = scanner.scanContent(
      headerViews(sent),
      reach,
      decision.scan || context.frameScan,
    );
    return finding && { refusal: dlpRefusal(finding) };
  };
  // A handshake is a GET that may ask to be taken for another method or path, as any request.
  const judged = 'judged' in asked ? asked.judged : request;
  const admission = await admit(context.admission, judged, inspect);
  if (!admission.admitted) return refuseSocket(socket, admission.refusal);
  const target = admission.decision.target;
  if (target?.kind !== 'url') throw new Error('unreachable: a WebSocket target is a URL');

  const { default: WebSocketClient, WebSocketServer } = await loadWs();
  const watch = watchClientDuringDial(socket);
  const upstream = await openUpstream(
    WebSocketClient,
    context,
    withoutUserinfo(request.target),
    protocols,
    pairs(forwarded),
    {
      address: formatIp(admission.address),
      port: target.port,
      secure: target.scheme === 'https',
      servername: target.host.kind === 'name' ? target.host.name : undefined,
    },
    watch.gone,
  );
  const sentEarly = watch.stop();
  if (!upstream.ok && !watch.gone.aborted) {
    const { status, layer, reason } = upstream.refusal;
    await context.record(
      outcomeOf(admission.entry, `status=${status} layer=${layer} reason=${reason}`),
    );
    return refuseSocket(socket, upstream.refusal);
  }
  // The client gone while the origin was dialled (ws would drop the socket without ever
  // handing over a connection): the dial was given up, or its connection is dropped now.
  if (!upstream.ok || !socket.readable || !socket.writable) {
    if (upstream.ok) upstream.socket.terminate();
    socket.destroy();
    await context.record(
      outcomeOf(admission.entry, 'status=499 reason=client_gone_during_handshake'),
    );
    return;
  }
  const server = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: context.maxMessageBytes,
    // The client gets the subprotocol the origin chose, or none.
    handleProtocols: () => upstream.socket.protocol || false,
  });
  // ws answers a handshake it rejects itself and never calls back: the socket's close says so.
  // Paused like the upstream, until the relay listens (frames may have come with the handshake).
  const client = await new Promise<WebSocket | undefined>((resolve) => {
    socket.once('close', () => resolve(undefined));
    server.handleUpgrade(req, socket, Buffer.concat([head, sentEarly]), (opened) => {
      opened.pause();
      resolve(opened);
    });
  });
  if (client === undefined) {
    upstream.socket.terminate();
    await context.record(outcomeOf(admission.entry, 'status=400 reason=client_handshake_rejected'));
  } else {
    const pair = { client, upstream: upstream.socket, clientSocket: socket as Socket };
    await relayMessages(context, pair, admission.entry, scanMessages, reach);
  }
}

/** Bytes a client may send before its handshake is answered that are kept for the relay. */
const EARLY_BYTES_KEPT = 64 * 1024;

interface DialWatch {
  /** Aborted once the client has closed or ended its side. */
  readonly gone: AbortSignal;
  /** Stops reading; returns what the client sent meanwhile, for the relay to read first. */
  stop(): Buffer;
}

/**
 * Reads the client while the origin is dialled: a socket nobody reads never tells that its
 * peer left, and the dial would hold the origin connection until the handshake timeout. A
 * client sending more than EARLY_BYTES_KEPT before its answer is left unread (and unwatched).
 */
function watchClientDuringDial(socket: Duplex): DialWatch {
  const controller = new AbortController();
  const early: Buffer[] = [];
  let kept = 0;
  const onData = (chunk: Buffer) => {
    early.push(chunk);
    kept += chunk.length;
    if (kept >= EARLY_BYTES_KEPT) socket.pause();
  };
  const onGone = () => controller.abort();
  if (socket.destroyed || !socket.readable) onGone();
  socket.on('data', onData);
  socket.on('end', onGone);
  socket.on('close', onGone);
  socket.on('error', onGone);
  return {
    gone: controller.signal,
    stop() {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onGone);
      return Buffer.concat(early);
    },
  };
}

/** Subprotocol names are tokens (RFC 6455 4.1), each named once. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * What makes the client's handshake one ws would refuse (after the origin was dialled): it is
 * refused first, with a receipt, and nothing is dialled.
 */
function handshakeProblem(req: IncomingMessage, protocols: readonly string[]): string | undefined {
  if (!/^[+/0-9A-Za-z]{22}==$/.test(req.headers['sec-websocket-key'] ?? ''))
    return 'the WebSocket handshake has no valid Sec-WebSocket-Key';
  if (req.headers['sec-websocket-version'] !== '13')
    return 'the WebSocket handshake must ask for Sec-WebSocket-Version 13';
  const malformed = protocols.find(
    (name, at) => !TOKEN.test(name) || protocols.indexOf(name) !== at,
  );
  if (malformed !== undefined)
    return `the Sec-WebSocket-Protocol ${JSON.stringify(malformed)} is not a token, or is named twice`;
  return undefined;
}

/**
 * ws sends the path and query as a URL parser serialises them (`"`, `<`, `>` percent-encoded,
 * `{`, `}` and a backtick in a path, `'` in a query): a target spelled otherwise would go
 * upstream as something its receipt does not record.
 */
function reencodedProblem(target: string): string | undefined {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return undefined; // refused as malformed by the decision already
  }
  const spelled = /^wss?:\/\/[^/?]*(.*)$/is.exec(target)?.[1] ?? '';
  const sent = url.pathname + url.search;
  if ((spelled.startsWith('/') ? spelled : `/${spelled}`) === sent) return undefined;
  return 'the WebSocket URL holds characters a URL parser percent-encodes (" < > anywhere, { } ` in the path, \' in the query), so it would not go upstream as recorded; percent-encode them';
}

const CLIENT_GONE: Refusal = {
  status: 499,
  layer: 'upstream',
  reason: 'the client left during the handshake',
};

type Upstream = { ok: true; socket: WebSocket } | { ok: false; refusal: Refusal };

interface Dial {
  readonly address: string;
  readonly port: number;
  readonly secure: boolean;
  readonly servername: string | undefined;
}

/** Opens the origin's WebSocket on the checked address (the URL's name is only for Host and SNI). */
function openUpstream(
  WebSocketClient: typeof WebSocket,
  context: WebSocketContext,
  url: string,
  protocols: string[],
  headers: readonly (readonly [string, string])[],
  dial: Dial,
  clientGone: AbortSignal,
): Promise<Upstream> {
  return new Promise((resolve) => {
    if (clientGone.aborted) return resolve({ ok: false, refusal: CLIENT_GONE });
    const upstream = new WebSocketClient(url, protocols, {
      perMessageDeflate: false,
      maxPayload: context.maxMessageBytes,
      followRedirects: false,
      headers: Object.fromEntries(headers),
      createConnection: (): Socket =>
        dial.secure
          ? tlsConnect({
              host: dial.address,
              port: dial.port,
              ...(dial.servername ? { servername: dial.servername } : {}),
              secureContext: context.trust(),
              // Whatever NODE_TLS_REJECT_UNAUTHORIZED says in the engine's environment.
              rejectUnauthorized: true,
              ALPNProtocols: ['http/1.1'],
            })
          : netConnect({ host: dial.address, port: dial.port }),
    });
    const where = url.replace(/[?#].*$/, '');
    // ws's own handshakeTimeout never fires on a connection it is handed (createConnection).
    const timer = setTimeout(
      () =>
        fail(
          504,
          `upstream ${where} did not answer the WebSocket handshake within ${context.handshakeTimeoutMs} ms`,
        ),
      context.handshakeTimeoutMs,
    );
    const fail = (status: number, reason: string) => {
      clearTimeout(timer);
      clientGone.removeEventListener('abort', giveUp);
      upstream.removeAllListeners();
      upstream.on('error', () => undefined);
      upstream.terminate();
      resolve({ ok: false, refusal: { status, layer: 'upstream', reason } });
    };
    const giveUp = () => fail(CLIENT_GONE.status, CLIENT_GONE.reason);
    clientGone.addEventListener('abort', giveUp, { once: true });
    upstream.once('open', () => {
      clearTimeout(timer);
      clientGone.removeEventListener('abort', giveUp);
      upstream.removeAllListeners('error');
      // Frames that came with the 101 are parsed on the next tick, before the relay listens:
      // an error among them would have no listener and end the engine, a message would be
      // lost. Paused, nothing is read until the relay resumes it.
      upstream.pause();
      resolve({ ok: true, socket: upstream });
    });
    upstream.once('unexpected-response', (_request, response) =>
      fail(502, `upstream ${where} answered the WebSocket handshake with ${response.statusCode}`),
    );
    upstream.once('error', (error: NodeJS.ErrnoException) =>
      fail(502, `upstream ${where} failed: ${error.code ? `${error.code} ` : ''}${error.message}`),
    );
  });
}

interface Tally {
  sent: number;
  received: number;
  blocked: number;
  reason: string;
}

interface Pair {
  readonly client: WebSocket;
  readonly upstream: WebSocket;
  /** The client's connection: all traffic either way passes through it. */
  readonly clientSocket: Socket;
}

function relayMessages(
  context: WebSocketContext,
  { client, upstream, clientSocket }: Pair,
  entry: DecisionEntry,
  scanMessages: boolean,
  reach: readonly RequestTarget[],
): Promise<void> {
  const tally: Tally = { sent: 0, received: 0, blocked: 0, reason: 'complete' };
  /** The end of the text sent so far, all messages joined: where the next one continues it. */
  let sentTail = '';
  // ws turns the socket's own timeout off: quiet both ways this long, the pair is closed,
  // going away (1001) on both sides.
  clientSocket.setTimeout(context.idleMs, () => {
    if (tally.reason === 'complete') tally.reason = 'idle';
    closeWithin(client, GOING_AWAY, 'idle');
    closeWithin(upstream, GOING_AWAY, 'idle');
  });
  const block = (refusal: Refusal) => {
    tally.blocked++;
    tally.reason = `blocked ${refusal.layer}`;
    void context.record({
      ...entry,
      verdict: 'block',
      layer: refusal.layer,
      pattern: refusal.reason,
    });
    const reason = refusal.layer === 'dlp' ? 'DLP violation' : 'policy violation';
    closeWithin(client, POLICY_VIOLATION, reason);
    closeWithin(upstream, POLICY_VIOLATION, reason);
  };
  /** Whether a client message goes on; blocks the pair when not (never throws). */
  const judge = async (data: RawData, isBinary: boolean): Promise<boolean> => {
    try {
      // Gone, the origin takes nothing more: what is left is neither judged nor counted.
      if (upstream.readyState !== upstream.OPEN) return false;
      const refusal = await messageRefusal(data, isBinary);
      // Blocked meanwhile (an earlier message, the engine stopping): nothing more goes.
      if (tally.blocked > 0 || upstream.readyState !== upstream.OPEN) return false;
      if (refusal) {
        block(refusal);
        return false;
      }
      tally.sent++;
      return true;
    } catch (error) {
      block({
        status: 500,
        layer: 'engine',
        reason: `the message could not be judged: ${(error as Error).message}`,
      });
      return false;
    }
  };
  const messageRefusal = async (data: RawData, isBinary: boolean) => {
    if (!scanMessages || tally.blocked > 0) return undefined;
    if (isBinary) {
      return {
        status: 403,
        layer: 'websocket',
        reason: 'binary messages are not allowed while messages are scanned',
      };
    }
    const text = rawText(data);
    const texts = [{ text, where: 'WebSocket message' }];
    // A secret sent in pieces, one per message, is whole where they join.
    if (sentTail !== '')
      texts.push({ text: sentTail + text.slice(0, SEAM_CHARS), where: JOINED_MESSAGES });
    const finding = await context.scans.scanTexts(texts, reach, context.frameScan);
    if (finding) return dlpRefusal(finding);
    sentTail = (sentTail + text.slice(-SEAM_CHARS)).slice(-SEAM_CHARS);
    return undefined;
  };
  const toUpstream = forwarder(client, upstream, context.messageBudget, judge);
  const toClient = forwarder(upstream, client, context.messageBudget, async () => {
    if (client.readyState !== client.OPEN) return false;
    tally.received++;
    return true;
  });
  client.on('message', (data: RawData, isBinary: boolean) => toUpstream.send(data, isBinary));
  upstream.on('message', (data: RawData, isBinary: boolean) => toClient.send(data, isBinary));
  return new Promise((resolve) => {
    let open = 2;
    const closed = (side: 'client' | 'upstream', code: number, other: WebSocket) => {
      if (tally.reason === 'complete' && code !== 1000 && code !== 1005)
        tally.reason = `${side}_closed_${code}`;
      // What a side sent before it closed goes on first (its messages may still be scanned).
      void (side === 'client' ? toUpstream : toClient).settled().then(() => {
        closeWithin(other, closeCode(code));
        if (--open > 0) return;
        void context
          .record(
            outcomeOf(
              entry,
              `status=101 messages_sent=${tally.sent} messages_received=${tally.received} blocked=${tally.blocked} reason=${tally.reason}`,
            ),
          )
          .then(resolve);
      });
    };
    client.on('close', (code: number) => closed('client', code, upstream));
    upstream.on('close', (code: number) => closed('upstream', code, client));
    // ws has already sent the client its close code (1009 too big, 1002 compressed or
    // malformed, 1007 not UTF-8): the message was refused, and the evidence says so, once
    // the messages before it have gone on.
    client.on('error', (error: Error & { code?: string }) => {
      void toUpstream.settled().then(() => {
        if (tally.blocked === 0)
          block({
            status: 400,
            layer: error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'limit' : 'websocket',
            reason: `the client's message was refused: ${error.message}`,
          });
      });
      client.terminate();
    });
    upstream.on('error', () => upstream.terminate());
    upstream.resume();
    client.resume();
  });
}

/** How long a side has to answer the engine's close frame before its connection is dropped. */
export const CLOSE_GRACE_MS = 2_000;

/**
 * Sends a close frame, and drops the connection if the peer has not answered it in
 * CLOSE_GRACE_MS: ws would wait 30 s for a side that does not read, past the engine's
 * shutdown, whose evidence would then be sealed without this pair's outcome.
 */
function closeWithin(socket: WebSocket, code: number, reason?: string): void {
  if (socket.readyState === socket.CONNECTING) return socket.terminate();
  if (socket.readyState !== socket.OPEN) return;
  socket.close(code, reason);
  const timer = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
  socket.once('close', () => clearTimeout(timer));
}

/** Codes a peer may send in a close frame; the rest (1005, 1006, 1015) become 1000 or 1011. */
function closeCode(code: number): number {
  if (code === 1005) return 1000;
  if (code === 1006 || code === 1015) return 1011;
  return code;
}

/** The client's handshake headers that go on to the origin (flat name, value list). */
function forwardedHeaders(rawHeaders: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const lower = name.toLowerCase();
    if (!HANDSHAKE_HEADERS.has(lower) && !speaksForAHop(lower))
      kept.push(name, rawHeaders[i + 1] ?? '');
  }
  return kept;
}

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] ?? '', flat[i + 1] ?? '']);
  return out;
}

/** Credentials in a URL's userinfo are not sent on (the receipt never held them either). */
function withoutUserinfo(target: string): string {
  const url = new URL(target);
  url.username = '';
  url.password = '';
  return url.href;
}

/**
 * The subprotocols asked for, an empty item kept (`a,,b`, `a,`, an empty header): ws refuses
 * those after the origin was dialled, and they are refused first.
 */
function protocolList(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((item) => item.trim());
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
