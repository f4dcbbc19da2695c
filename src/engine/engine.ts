// The enforcing proxy: one HTTP listener that serves /health, absolute-form HTTP and
// CONNECT. Every request passes admission (policy, SSRF guard, write-ahead receipt)
// before anything is sent upstream.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  admit,
  record,
  recordedTarget,
  type AdmissionContext,
  type AdmissionRequest,
  withAskedOverrides,
} from './admission.js';
import { policyDetectors } from './dlp/detectors.js';
import { boundSecrets, createSecretScanner } from './dlp/secret-scan.js';
import { ContentScans, type ScannerSetup } from './dlp/content-scans.js';
import {
  continueIfAwaited,
  expectsContinue,
  RequestInspection,
  ScanBudget,
} from './request-inspection.js';
import { outcomeOf, type DecisionEntry, type DecisionLog } from './decision-log.js';
import { forwardRequest, framingRefusal, joinedValue } from './forward.js';
import { loadUndici, UpstreamPools } from './upstream-pools.js';
import { DEFAULT_LIMITS, httpServerOptions, type EngineLimits } from './limits.js';
import { clientErrorRefusal, refuseResponse, refuseSocket, type Refusal } from './refusal.js';
import {
  quoted,
  tunnelScheme,
  tunnelTarget,
  webSocketTarget,
  type Located,
  type TunnelAuthority,
} from './request-targets.js';
import type { Resolver } from './resolver.js';
import { awaitTunnelStart, relay } from './tunnel.js';
import { interceptedForAddress, passthroughToGuardedAddress } from './ssrf.js';
import { formatHost, plainHttpOnly, type EgressRule, type Policy } from '../policy/index.js';
import { originForm, parseRequestTarget } from '../policy/target.js';
import type { IpAddress } from '../policy/ip.js';
import type { RunCertificateAuthority } from './tls/run-ca.js';
import { leafNames } from './tls/leaf-names.js';
import { terminateTls } from './tls/terminate.js';
import { CLOSE_GRACE_MS, relayWebSocket, type WebSocketContext } from './websocket.js';
import { startRequestSweep, stopRequestSweep } from './request-sweep.js';
import { answerInProgress, answersWritten } from './answer-order.js';
import { MessageBudget, MESSAGES_HELD_BYTES } from './message-relay.js';
import { upstreamTrust } from './upstream-trust.js';

export interface EngineOptions {
  readonly policy: Policy;
  readonly log: DecisionLog;
  readonly resolver: Resolver;
  /** Mints the certificates shown to clients whose tunnels are intercepted. */
  readonly ca: RunCertificateAuthority;
  readonly version: string;
  /** Extra PEM certificates trusted for upstream TLS, besides the system roots. */
  readonly upstreamCa?: readonly string[];
  readonly limits?: Partial<EngineLimits>;
  /** Values of the policy's `secrets:`-bound environment variables, by name. */
  readonly secretValues?: Readonly<Record<string, string | undefined>>;
  /** Called after each receipt is written (for the log line). */
  readonly onDecision?: (entry: DecisionEntry) => void;
  readonly onEvidenceError?: (error: Error) => void;
  /** A request's handling failed (a bug): its client got a 500 and the evidence a receipt. */
  readonly onInternalError?: (message: string) => void;
}

export interface EngineCounters {
  requests: number;
  allowed: number;
  blocked: number;
  warned: number;
  activeTunnels: number;
  evidenceErrors: number;
  internalErrors: number;
}

/** Where to listen: a port on an address, or a listening handle handed over (from the netns). */
export type ListenTarget =
  { readonly host: string; readonly port: number } | { readonly handle: object };

/**
 * A tunnel whose requests the engine serves (its TLS intercepted, or plain HTTP): what its
 * inner requests must name, and where they go.
 */
interface InterceptedTunnel extends TunnelAuthority {
  /** Its requests came inside TLS (https://, wss://), or in the clear (http://, ws://). */
  readonly tls: boolean;
  readonly address: IpAddress;
  requests: number;
  /** The tasks of its requests still running: its outcome receipt waits for theirs. */
  readonly tasks: Set<Promise<void>>;
}

/** What the connection did to a request being judged or forwarded. */
interface RequestState {
  /** node:http's request timeout ended its connection: its body came too slowly. */
  timedOut?: Refusal;
}

/** How a request whose client left before it was sent ends (499, as other client departures). */
const CLIENT_LEFT_BEFORE_SENT: Refusal = {
  status: 499,
  layer: 'client',
  reason: 'the client connection closed before the request was sent',
};

export class Engine {
  readonly counters: EngineCounters = {
    requests: 0,
    allowed: 0,
    blocked: 0,
    warned: 0,
    activeTunnels: 0,
    evidenceErrors: 0,
    internalErrors: 0,
  };
  private readonly server: Server;
  /** Serves the requests inside intercepted and plain HTTP tunnels (never listens itself). */
  private readonly inner: Server;
  private readonly intercepted = new WeakMap<Duplex, InterceptedTunnel>();
  private readonly limits: EngineLimits;
  private readonly pools: UpstreamPools;
  private readonly admission: AdmissionContext;
  private readonly webSockets: WebSocketContext;
  private readonly tunnels = new Set<Duplex>();
  /**
   * Connections whose request was refused with its body unread and undelimitable (or too
   * large to drain): they close after the refusal, and the parse error their end raises is
   * that request's, already recorded, not another one.
   */
  private readonly closingAfterRefusal = new WeakSet<Duplex>();
  /** Connections whose next request is refused once the answer before it is out. */
  private readonly refusingAfterAnswer = new WeakSet<Duplex>();
  /**
   * Requests being judged or forwarded, by response: a request timeout on their connection is
   * theirs (their body came too slowly), and their own receipt records it.
   */
  private readonly inFlight = new WeakMap<ServerResponse, RequestState>();
  /** The request each connection is on: the last one node handed over. */
  private readonly current = new WeakMap<Duplex, ServerResponse>();
  /** Request and tunnel handlers still running: their receipts must land before the seal. */
  private readonly pending = new Set<Promise<void>>();
  /** Settles when the engine starts to close. */
  private readonly closing: Promise<void>;
  private startClosing: () => void = () => undefined;
  private readonly scanBudget: ScanBudget;
  private readonly contentScans: ContentScans;
  private readonly startedAt = Date.now();
  private nextRequest = 0;

  constructor(private readonly options: EngineOptions) {
    this.closing = new Promise((resolve) => (this.startClosing = resolve));
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.scanBudget = new ScanBudget(this.limits.maxScanBufferBytes);
    const trust = upstreamTrust(options.upstreamCa ?? []);
    this.pools = new UpstreamPools(this.limits, trust);
    const scannerSetup: ScannerSetup = {
      detectors: policyDetectors(options.policy),
      secrets: boundSecrets(options.policy, options.secretValues),
      patternScanMs: this.limits.patternScanMs,
    };
    const { detectors, secrets, patternScanMs } = scannerSetup;
    const scanner = createSecretScanner(detectors, secrets, patternScanMs);
    this.contentScans = new ContentScans(scanner, scannerSetup);
    this.admission = {
      policy: options.policy,
      log: options.log,
      resolver: options.resolver,
      scanner,
      onDecision: (entry) => {
        if (entry.phase !== 'outcome') this.count(entry);
        options.onDecision?.(entry);
      },
      onEvidenceError: (error) => {
        this.counters.evidenceErrors++;
        options.onEvidenceError?.(error);
      },
    };
    this.webSockets = {
      admission: this.admission,
      frameScan: options.policy.websocket.frame_scan,
      trust,
      maxMessageBytes: this.limits.maxMessageBytes,
      handshakeTimeoutMs: this.limits.upstreamTimeoutMs,
      idleMs: this.limits.tunnelIdleMs,
      scans: this.contentScans,
      messageBudget: new MessageBudget(MESSAGES_HELD_BYTES),
      record: (entry) => this.record(entry),
      track: (socket) => {
        this.tunnels.add(socket);
        return () => this.tunnels.delete(socket);
      },
    };
    this.server = createServer(httpServerOptions(this.limits));
    this.serveRequests(this.server, 'forward', (req, res) => this.onRequest(req, res));
    // node:http would answer any other expectation with a bare 417 and no receipt.
    this.server.on('checkExpectation', (req, res) => this.refuseExpectation(req, res));
    // A CONNECT or an upgrade pipelined behind requests still being answered: its 200 or 101
    // (or refusal) waits for their answers.
    this.server.on('connect', (req, socket, head) =>
      this.track(
        answersWritten(socket).then(() => this.onConnect(req, socket, head)),
        (refusal) => this.failSocket('connect', 'CONNECT', req.url ?? '', socket, refusal),
      ),
    );
    this.server.on('upgrade', (req, socket, head) =>
      this.afterAnswers(req, socket, 'websocket', () => this.onUpgrade(req, socket, head)),
    );
    this.server.on(
      'clientError',
      (error, socket) => void this.onClientError(error as NodeJS.ErrnoException, socket),
    );
    this.server.maxConnections = this.limits.maxClientConnections;
    this.server.on('drop', () => this.recordDroppedConnection());
    this.inner = createServer(httpServerOptions(this.limits));
    // An idle intercepted connection is closed by its socket timeout, a late request by the
    // request-timeout sweep. No 'timeout' listener on this server: with one, node would leave
    // idle connections open (and serveTunnel would no longer see them closed for it).
    this.inner.timeout = this.limits.idleTimeoutMs;
    startRequestSweep(this.inner);
    this.serveRequests(this.inner, 'intercept', (req, res) => this.onInterceptedRequest(req, res));
    this.inner.on('checkExpectation', (req, res) => this.refuseExpectation(req, res));
    // Without a listener node:http would drop the connection silently, with no receipt.
    this.inner.on('connect', (req, socket) =>
      this.afterAnswers(req, socket, 'intercept', () => this.onNestedConnect(req, socket)),
    );
    this.inner.on('upgrade', (req, socket, head) =>
      this.afterAnswers(req, socket, 'intercept', () => this.onUpgrade(req, socket, head)),
    );
    this.inner.on(
      'clientError',
      (error, socket) =>
        void this.onClientError(error as NodeJS.ErrnoException, socket, 'intercept'),
    );
  }

  listen(target: ListenTarget): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        const address = this.server.address();
        if (address === null || typeof address === 'string')
          return reject(new Error('the engine is not listening on a TCP address'));
        resolve({ host: address.address, port: address.port });
        // Loaded while whoever started the engine reads its ready line, not on the first request.
        setImmediate(() => void loadUndici());
      };
      if ('handle' in target) this.server.listen(target.handle, done);
      else this.server.listen(target.port, target.host, done);
    });
  }

  /** Stops accepting, ends open tunnels and connections; the caller then seals the evidence. */
  async close(): Promise<void> {
    this.startClosing();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const innerClosed = stopRequestSweep(this.inner);
    for (const tunnel of this.tunnels) tunnel.destroy();
    const grace = setTimeout(() => this.server.closeAllConnections(), 2_000);
    await Promise.all([closed, innerClosed]);
    clearTimeout(grace);
    // A tunnel's outcome receipt is written after its sockets close, a scan still running
    // ends in a receipt too: wait for them (bounded). Scans still running then are refused,
    // and their receipts written before the caller seals: a WebSocket pair so refused gives
    // its origin the close grace to answer before its outcome is written.
    await this.settlePending(5_000);
    await this.contentScans.close();
    await this.settlePending(CLOSE_GRACE_MS + 1_000);
    await this.pools.close();
  }

  private async settlePending(limitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.pending]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, limitMs))),
    ]);
    clearTimeout(timer);
  }

  private serveRequests(
    server: Server,
    transport: 'forward' | 'intercept',
    handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  ): void {
    const serve = (req: IncomingMessage, res: ServerResponse) => {
      this.current.set(req.socket, res);
      // A connection quiet while its request waits for the origin is not idle: the upstream
      // timeout answers it (504), where the socket's idle timeout would just cut it.
      res.on('timeout', () => undefined);
      this.track(
        handle(req, res),
        (refusal) => this.failRequest(transport, req, res, refusal),
        req.socket,
      );
    };
    server.on('request', serve);
    // `Expect: 100-continue`: the client may send its body only once the request is admitted
    // (the handler answers 100 then), so a refused upload never crosses the wire. Node says
    // continue to any value naming 100-continue (`100-continue, foo`): the rest is an
    // expectation no one meets.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      expectsContinue(req) ? serve(req, res) : this.refuseExpectation(req, res),
    );
  }

  /**
   * Keeps a request's task until it settles (shutdown waits for them). A task that fails is a
   * bug, which one request must not turn into a dead engine whose evidence stays unsealed: the
   * request is refused (500, layer engine, with a receipt) and the failure reported.
   */
  private track(task: Promise<void>, fail: (refusal: Refusal) => void, connection?: Duplex): void {
    const tunnel = connection && this.intercepted.get(connection);
    const settled: Promise<void> = task
      .then(undefined, (error: unknown) => {
        this.counters.internalErrors++;
        const message = this.admission.scanner.redactText(
          error instanceof Error ? error.message : String(error),
        );
        this.options.onInternalError?.(message);
        fail({ status: 500, layer: 'engine', reason: `internal error: ${message}` });
      })
      .finally(() => {
        this.pending.delete(settled);
        tunnel?.tasks.delete(settled);
      });
    this.pending.add(settled);
    tunnel?.tasks.add(settled);
  }

  private failRequest(
    transport: DecisionEntry['transport'],
    req: IncomingMessage,
    res: ServerResponse,
    refusal: Refusal,
  ): void {
    this.recordBlock(
      this.unadmitted(transport, req.method ?? '', this.requestTarget(req), this.requestId()),
      refusal,
    );
    refuseResponse(res, refusal);
  }

  /** A CONNECT or handshake still unanswered gets the refusal; a tunnel or WebSocket under way is cut. */
  private failSocket(
    transport: DecisionEntry['transport'],
    method: string,
    target: string,
    socket: Duplex,
    refusal: Refusal,
  ): void {
    this.recordBlock(this.unadmitted(transport, method, target, this.requestId()), refusal);
    if (socket.writable && (socket as Socket).bytesWritten === 0) refuseSocket(socket, refusal);
    else socket.destroy();
  }

  /** Counts a request, and on its intercepted tunnel when it arrived inside one (returned). */
  private countRequest(connection: Duplex): InterceptedTunnel | undefined {
    this.counters.requests++;
    const tunnel = this.intercepted.get(connection);
    if (tunnel) tunnel.requests++;
    return tunnel;
  }

  /** What a refusal quotes of the request, without the secrets the evidence may not hold. */
  private readonly redactQuote = (text: string): string => this.admission.scanner.redactText(text);

  /** The target a receipt names: inside a tunnel, the tunnel's URL with the request's path. */
  private requestTarget(req: IncomingMessage): string {
    const tunnel = this.intercepted.get(req.socket);
    return tunnel ? this.locateInTunnel(req, tunnel).target : (req.url ?? '');
  }

  /** A request's absolute target inside a tunnel, or why it names something else. */
  private locateInTunnel(
    req: IncomingMessage,
    tunnel: InterceptedTunnel,
    webSocket = false,
  ): Located {
    const scheme = tunnelScheme(tunnel.tls, webSocket);
    return tunnelTarget(req.url ?? '', hostHeader(req), tunnel, scheme, this.redactQuote);
  }

  /** The refusal for one more tunnel or WebSocket, when the limit is reached. */
  private tunnelsFull(): Refusal | undefined {
    const limit = this.limits.maxActiveTunnels;
    if (this.counters.activeTunnels < limit) return undefined;
    return {
      status: 503,
      layer: 'limit',
      reason: `too many active tunnels and WebSockets (limit ${limit})`,
    };
  }

  private requestId(): string {
    return `req-${++this.nextRequest}`;
  }

  private count(entry: DecisionEntry): void {
    if (entry.verdict === 'allow') this.counters.allowed++;
    else if (entry.verdict === 'warn') this.counters.warned++;
    else this.counters.blocked++;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++;
    const url = req.url ?? '';
    if (url.startsWith('/')) return this.onOriginForm(req, res);
    const requestId = this.requestId();
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      return this.refuseUnadmitted(res, 'forward', req.method ?? '', url, requestId, {
        status: 400,
        layer: 'request',
        reason: 'an HTTP/1.1 request needs a Host header',
      });
    }
    if (/^wss?:/i.test(url)) {
      return this.refuseUnadmitted(res, 'forward', req.method ?? '', url, requestId, {
        status: 400,
        layer: 'request',
        reason: 'a ws:// or wss:// target needs a WebSocket handshake (Upgrade: websocket)',
      });
    }
    return this.forward(req, res, {
      method: req.method ?? '',
      target: url,
      transport: 'forward',
      requestId,
    });
  }

  /** A request inside a tunnel the engine serves: origin-form, for the tunnel's own host. */
  private async onInterceptedRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const tunnel = this.countRequest(req.socket);
    const requestId = this.requestId();
    if (tunnel === undefined) throw new Error('unreachable: an inner request outside a tunnel');
    const method = req.method ?? '';
    const located = this.locateInTunnel(req, tunnel);
    if (!located.ok) {
      return this.refuseUnadmitted(
        res,
        'intercept',
        method,
        located.target,
        requestId,
        located.refusal,
      );
    }
    return this.forward(req, res, {
      method,
      target: located.target,
      transport: 'intercept',
      requestId,
      address: tunnel.address,
    });
  }

  /** Admits a request (absolute URL) and forwards it to the checked address. */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    request: AdmissionRequest,
  ): Promise<void> {
    const framing = framingRefusal(req, this.limits.maxBodyBytes);
    if (framing) {
      const { transport, method, target, requestId } = request;
      res.shouldKeepAlive = false;
      this.closingAfterRefusal.add(req.socket);
      return this.refuseUnadmitted(res, transport, method, target, requestId, framing);
    }
    const asked = withAskedOverrides(request, { parsed: req.headers, raw: req.rawHeaders });
    if ('problem' in asked) {
      const { transport, method, target, requestId } = request;
      const refusal: Refusal = { status: 400, layer: 'request', reason: asked.problem };
      return this.refuseUnadmitted(res, transport, method, target, requestId, refusal);
    }
    const { judged } = asked;
    const state: RequestState = {};
    const inspection = new RequestInspection(
      req,
      res,
      this.admission.scanner,
      this.contentScans,
      this.limits,
      this.scanBudget,
      () => state.timedOut,
    );
    this.inFlight.set(res, state);
    try {
      await this.forwardInspected(req, res, judged, inspection, state);
    } finally {
      this.inFlight.delete(res);
      inspection.release();
    }
  }

  private async forwardInspected(
    req: IncomingMessage,
    res: ServerResponse,
    request: AdmissionRequest,
    inspection: RequestInspection,
    state: Readonly<RequestState>,
  ): Promise<void> {
    const admission = await admit(this.admission, request, inspection.inspect);
    if (!admission.admitted) {
      inspection.settleUnreadBody();
      return refuseResponse(res, admission.refusal);
    }
    // A client that left while its request was judged (a large body's scan takes a while)
    // has nothing sent for it: its answer could go nowhere, and nothing would end the wait.
    if (res.destroyed) return this.recordOutcome(admission.entry, CLIENT_LEFT_BEFORE_SENT);
    const target = admission.decision.target;
    if (target?.kind !== 'url') throw new Error('unreachable: a forward request has a URL target');
    const upstream = {
      scheme: target.scheme,
      hostname: target.hostname,
      authority: target.authority,
      port: target.port,
      address: admission.address,
      path: originForm(request.target),
    };
    const slot = await this.pools.acquire(upstream);
    if (!slot.ok) {
      return this.refuseAfterAdmission(res, admission.entry, {
        status: 503,
        layer: 'limit',
        reason: slot.reason,
      });
    }
    try {
      const body = inspection.body;
      if (body === undefined) continueIfAwaited(req, res);
      const outcome = await forwardRequest(req, res, slot.send, upstream, this.limits, body);
      if (!outcome.ok) {
        if (outcome.refusal.layer === 'limit')
          return this.refuseAfterAdmission(res, admission.entry, outcome.refusal);
        // The request was allowed and sent, and the upstream failed (502/504), or the client's
        // connection closed (a request timeout closes it too): an outcome receipt records how
        // it ended, as for tunnels.
        const refusal = state.timedOut ?? outcome.refusal;
        this.recordOutcome(admission.entry, refusal);
        refuseResponse(res, refusal);
      }
    } finally {
      slot.release();
    }
  }

  /** A request refused before admission (its receipt is written here). */
  private refuseUnadmitted(
    res: ServerResponse,
    transport: DecisionEntry['transport'],
    method: string,
    target: string,
    requestId: string,
    refusal: Refusal,
  ): void {
    this.recordBlock(this.unadmitted(transport, method, target, requestId), refusal);
    refuseResponse(res, refusal);
  }

  /** A request admitted, then stopped by a limit: a second receipt records the block. */
  private refuseAfterAdmission(res: ServerResponse, entry: DecisionEntry, refusal: Refusal): void {
    this.recordBlock(entry, refusal);
    refuseResponse(res, refusal);
  }

  private recordOutcome(entry: DecisionEntry, refusal: Refusal): void {
    void this.record(
      outcomeOf(entry, `status=${refusal.status} layer=${refusal.layer} reason=${refusal.reason}`),
    );
  }

  /** Node closed a connection past the limit before anything was read from it. */
  private recordDroppedConnection(): void {
    this.counters.requests++;
    this.recordBlock(this.unadmitted('forward', '', '', this.requestId()), {
      status: 503,
      layer: 'limit',
      reason: `too many client connections (limit ${this.limits.maxClientConnections}): a new one was closed unread`,
    });
  }

  private recordBlock(entry: DecisionEntry, refusal: Refusal): void {
    const { phase: _phase, ...decision } = entry;
    const blocked: DecisionEntry = {
      ...decision,
      verdict: 'block',
      layer: refusal.layer,
      pattern: refusal.reason,
    };
    void this.record(blocked);
  }

  /**
   * The receipt fields of a request refused before admission could judge it. Its target is
   * still scanned: a secret in a URL or host name is cut out of the evidence here too.
   */
  private unadmitted(
    transport: DecisionEntry['transport'],
    method: string,
    target: string,
    requestId: string,
  ): DecisionEntry {
    const parsed = parseRequestTarget(target);
    const scanner = this.admission.scanner;
    const leak = scanner.scanUrl(target, parsed.ok ? parsed.target : undefined);
    return {
      actionId: randomUUID(),
      requestId,
      transport,
      method: method.toUpperCase(),
      target: target ? recordedTarget(scanner, target, leak) : 'pipelock://request/unparsed',
      verdict: 'allow',
    };
  }

  /** Appends a receipt; a failure is reported (and counted), never thrown. */
  private record(entry: DecisionEntry): Promise<void> {
    return record(this.admission, entry).catch((error: Error) =>
      this.admission.onEvidenceError(error),
    );
  }

  private onOriginForm(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = JSON.stringify({
        status:
          this.counters.evidenceErrors + this.counters.internalErrors > 0 ? 'degraded' : 'healthy',
        version: this.options.version,
        policy_hash: this.options.policy.hash,
        mode: this.options.policy.mode,
        default_deny: this.options.policy.default_deny,
        uptime_seconds: Math.floor((Date.now() - this.startedAt) / 1000),
        tls_interception_enabled: true,
        websocket_proxy_enabled: this.options.policy.websocket.enabled,
        counters: {
          requests: this.counters.requests,
          allowed: this.counters.allowed,
          blocked: this.counters.blocked,
          warned: this.counters.warned,
          active_tunnels: this.counters.activeTunnels,
          upstream_pools: this.pools.size,
          evidence_errors: this.counters.evidenceErrors,
          internal_errors: this.counters.internalErrors,
        },
      });
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const refusal: Refusal =
      path === '/ws'
        ? {
            status: 400,
            layer: 'request',
            reason:
              'the WebSocket proxy (/ws?url=) expects a WebSocket handshake (Upgrade: websocket)',
          }
        : {
            status: 400,
            layer: 'request',
            reason:
              'not a proxy request; use an absolute URL (http://host/path), CONNECT host:port, or GET /health',
          };
    // A client that ignores its proxy settings (a transparent-style request) leaves a trace too.
    this.failRequest('forward', req, res, refusal);
  }

  private async onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.counters.requests++;
    const requestId = this.requestId();
    const target = req.url ?? '';
    socket.on('error', () => socket.destroy());
    const full = this.tunnelsFull();
    if (full) {
      this.recordBlock(this.unadmitted('connect', 'CONNECT', target, requestId), full);
      return refuseSocket(socket, full);
    }
    this.counters.activeTunnels++;
    this.tunnels.add(socket);
    try {
      const admission = await admit(this.admission, {
        method: 'CONNECT',
        target,
        transport: 'connect',
        requestId,
      });
      if (!admission.admitted) return refuseSocket(socket, admission.refusal);
      const authority = admission.decision.target;
      if (authority === undefined) throw new Error('unreachable: an admitted CONNECT has a target');
      const { address: ip } = admission;
      const { port } = authority;
      const kind = interceptedForAddress(this.admission.policy, ip, port);
      if (kind !== undefined && admission.decision.passthrough) {
        const refusal = passthroughToGuardedAddress(admission.decision, { ip, kind, port });
        this.recordBlock(admission.entry, refusal);
        return refuseSocket(socket, refusal);
      }
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      // The leaf is minted while the client, having read the 200, sets up its TLS, rather
      // than after its hello arrives.
      const leaf =
        kind !== undefined || this.needsInterception(admission.decision)
          ? this.options.ca.contextFor(leafNames(authority.host, target))
          : undefined;
      const hello = await awaitTunnelStart(socket, head, authority.host, this.limits);
      if (hello.kind === 'refused') {
        this.recordBlock(admission.entry, { status: 403, layer: 'sni', reason: hello.reason });
        socket.destroy();
        return;
      }
      // Plain HTTP has no TLS to break: its requests are judged one by one, whatever the rule.
      if (hello.kind === 'http') {
        await this.servePlainTunnel(socket, hello.head, admission);
        return;
      }
      if (leaf) {
        await this.intercept(socket as Socket, hello.hello, admission, leaf);
        return;
      }
      if (hello.hidesServerName) {
        this.recordBlock(admission.entry, {
          status: 403,
          layer: 'sni',
          reason: encryptedHelloReason(admission.decision.rule),
        });
        socket.destroy();
        return;
      }
      const result = await relay(
        socket,
        hello.hello,
        { host: authority.host, address: admission.address, port: authority.port },
        this.limits,
      );
      if (result.violation !== undefined) {
        this.recordBlock(admission.entry, {
          status: 403,
          layer: 'sni',
          reason: `${result.violation}; the tunnel was closed after ${result.sent} bytes sent and ${result.received} received`,
        });
        return;
      }
      await this.appendOutcome(
        admission.entry,
        `status=200 bytes=${result.received} reason=${result.reason} sent=${result.sent}`,
      );
    } finally {
      this.counters.activeTunnels--;
      this.tunnels.delete(socket);
    }
  }

  /** A request expecting something other than `100-continue`: refused before it is judged. */
  private refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
    const tunnel = this.countRequest(req.socket);
    this.refuseUnadmitted(
      res,
      tunnel ? 'intercept' : 'forward',
      req.method ?? '',
      this.requestTarget(req),
      this.requestId(),
      {
        status: 417,
        layer: 'request',
        reason: 'the request expects something other than 100-continue, which cannot be met',
      },
    );
  }

  /**
   * Runs `handle` (an upgrade, a CONNECT inside a tunnel) once the answers of the requests
   * before it on the connection are out.
   */
  private afterAnswers(
    req: IncomingMessage,
    socket: Duplex,
    transport: DecisionEntry['transport'],
    handle: () => void,
  ): void {
    if (answerInProgress(socket) === undefined) return handle();
    this.track(
      answersWritten(socket).then(handle),
      (refusal) => this.failSocket(transport, req.method ?? '', req.url ?? '', socket, refusal),
      socket,
    );
  }

  /** A CONNECT inside a served tunnel would open one the outer CONNECT's checks never saw. */
  private onNestedConnect(req: IncomingMessage, socket: Duplex): void {
    this.countRequest(req.socket);
    const refusal = {
      status: 400,
      layer: 'request',
      reason: 'CONNECT inside a tunnel is refused: tunnels do not nest',
    };
    this.recordBlock(
      this.unadmitted('intercept', 'CONNECT', req.url ?? '', this.requestId()),
      refusal,
    );
    refuseSocket(socket, refusal);
  }

  /** Terminates the client's TLS with a run-CA certificate and serves the tunnel's requests. */
  private async intercept(
    client: Socket,
    hello: Buffer,
    admission: Admitted,
    leaf: SecureContext,
  ): Promise<void> {
    const authority = admission.decision.target;
    if (authority === undefined) throw new Error('unreachable: an admitted CONNECT has a target');
    const terminated = await terminateTls(client, hello, leaf, this.limits.clientHelloTimeoutMs);
    if (!terminated.ok) {
      this.recordBlock(admission.entry, {
        status: 403,
        layer: 'tls',
        reason: `TLS interception of ${formatHost(authority.host)}:${authority.port} failed: ${terminated.reason}${interceptionWayOut(admission.decision.rule)}`,
      });
      return;
    }
    await this.serveTunnel(terminated.socket, admission, true);
  }

  /** Serves a tunnel whose first bytes, `head`, begin a plain HTTP request. */
  private async servePlainTunnel(socket: Duplex, head: Buffer, admission: Admitted): Promise<void> {
    socket.unshift(head);
    const served = this.serveTunnel(socket, admission, false);
    // Paused while its first bytes were read, the socket flows on to the inner server now.
    socket.resume();
    await served;
  }

  /**
   * Serves a tunnel's requests (decrypted, or plain HTTP) on the inner server, each admitted on
   * its own and sent to the address the CONNECT was admitted to; one outcome receipt when the
   * tunnel closes.
   */
  private async serveTunnel(socket: Duplex, admission: Admitted, tls: boolean): Promise<void> {
    const authority = admission.decision.target;
    if (authority === undefined) throw new Error('unreachable: an admitted CONNECT has a target');
    const tunnel: InterceptedTunnel = {
      host: authority.host,
      port: authority.port,
      tls,
      address: admission.address,
      requests: 0,
      tasks: new Set(),
    };
    this.intercepted.set(socket, tunnel);
    // A client that resets the tunnel ends it as a close does: an error here is no failure of ours.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => socket.destroy());
    this.inner.emit('connection', socket);
    // The inner server's own timeout listener, before this one, closes a connection quiet for
    // its idle time (one whose request waits for its origin stays open).
    let reason = 'complete';
    socket.on('timeout', () => {
      if (socket.destroyed) reason = 'idle_timeout';
    });
    await closed;
    // Requests cut short by the close record how they ended; their receipts come first, unless
    // the engine is stopping (a WebSocket handshake to a silent origin could outlast the wait
    // for the tunnel's own receipt).
    await Promise.race([Promise.allSettled(tunnel.tasks), this.closing]);
    await this.appendOutcome(
      admission.entry,
      `status=200 intercepted_requests=${tunnel.requests} reason=${reason}`,
    );
  }

  /**
   * Rules that judge methods, paths or content need to see inside TLS, and so does a
   * destination a bound secret may not go to (unless its rule chose `tls: passthrough`).
   */
  private needsInterception(decision: Admitted['decision']): boolean {
    const target = decision.target;
    if (decision.intercept) return true;
    if (target === undefined || decision.passthrough) return false;
    return this.admission.scanner.guards(target);
  }

  private async appendOutcome(entry: DecisionEntry, pattern: string): Promise<void> {
    await this.record({ ...outcomeOf(entry, pattern), verdict: 'allow' });
  }

  /**
   * A WebSocket handshake: `GET /ws?url=ws(s)://…` on the proxy, an absolute-form upgrade
   * through the forward proxy, or an upgrade inside an intercepted tunnel.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tunnel = this.countRequest(req.socket);
    const requestId = this.requestId();
    const located = tunnel
      ? this.locateInTunnel(req, tunnel, true)
      : webSocketTarget(req.url ?? '');
    const transport = tunnel ? 'intercept' : 'websocket';
    const refuse = (target: string, refusal: Refusal, method = 'WS') => {
      this.recordBlock(this.unadmitted(transport, method, target, requestId), refusal);
      refuseSocket(socket, refusal);
    };
    if (!located.ok) return refuse(located.target, located.refusal);
    if (req.method !== 'GET' || !/^websocket$/i.test(req.headers.upgrade ?? '')) {
      // Recorded as the request it is (an h2c upgrade is a GET), not as a WebSocket.
      const refusal = {
        status: 400,
        layer: 'request',
        reason: `only WebSocket upgrades (GET with Upgrade: websocket) are proxied, not this ${req.method ?? ''} upgrade to ${JSON.stringify(quoted(req.headers.upgrade ?? '', this.redactQuote))}: send the request without Upgrade (curl: no --http2 for http:// URLs; over https://, HTTP/1.1 is negotiated)`,
      };
      return refuse(located.target, refusal, req.method ?? '');
    }
    // One inside an intercepted tunnel is held by that tunnel's count; the others count alike.
    const full = tunnel ? undefined : this.tunnelsFull();
    if (full) return refuse(located.target, full);
    if (!tunnel) this.counters.activeTunnels++;
    this.track(
      relayWebSocket(this.webSockets, req, socket, head, {
        method: 'WS',
        target: located.target,
        transport,
        requestId,
        ...(tunnel ? { address: tunnel.address } : {}),
      }).finally(() => {
        if (!tunnel) this.counters.activeTunnels--;
      }),
      (refusal) => this.failSocket(transport, 'WS', located.target, socket, refusal),
      socket,
    );
  }

  private onClientError(
    error: NodeJS.ErrnoException,
    socket: Duplex,
    transport: DecisionEntry['transport'] = 'forward',
  ): void {
    // A socket already answered (ended by a refusal) can raise a second parse error when the
    // client then closes mid-request: that is not a second request, so no second receipt.
    if (
      (socket as Socket).destroyed ||
      !socket.writable ||
      error.code === 'ECONNRESET' ||
      this.closingAfterRefusal.has(socket)
    ) {
      socket.destroy();
      return;
    }
    // Refused already, once the answer before it is out: the parser repeats its error.
    if (this.refusingAfterAnswer.has(socket)) return;
    const refusal = clientErrorRefusal(error, this.limits);
    // An error while a request's body is still coming is about that request (node reads a
    // next request's bytes only once the one before is complete). Answered already (refused,
    // or its answer complete while its body still came), it has its answer and its receipt.
    // Its body timing out or broken off by the client is recorded by its own handler; a body
    // that turned malformed is recorded as a malformed request (a smuggling probe is a block).
    const current = this.current.get(socket);
    const ownBody = current !== undefined && !current.req.complete;
    if (ownBody && current.writableEnded) {
      socket.destroy();
      return;
    }
    if (ownBody && (refusal.status === 408 || error.code === 'HPE_INVALID_EOF_STATE')) {
      const state = this.inFlight.get(current);
      if (state && refusal.status === 408) state.timedOut = refusal;
    } else {
      this.countRequest(socket);
      this.recordBlock(this.unadmitted(transport, '', '', this.requestId()), refusal);
    }
    const answering = answerInProgress(socket);
    if (answering && (!ownBody || answering !== current)) {
      // A request pipelined behind one still being answered: answers go out in order.
      this.refusingAfterAnswer.add(socket);
      void answersWritten(socket, ownBody ? current : undefined).then(() =>
        refuseSocket(socket, refusal),
      );
      return;
    }
    // The request's own response already under way (its body turned malformed, or timed
    // out, after the upstream answered): writing a status line now would splice a second
    // response into the first. Cut the connection instead.
    if (answering?.headersSent) {
      socket.destroy();
      return;
    }
    refuseSocket(socket, refusal);
  }
}

/** The request's Host, every one it sent joined: two of them match no tunnel. */
function hostHeader(req: IncomingMessage): string | undefined {
  return joinedValue(req.rawHeaders, 'host');
}

type Admitted = Extract<Awaited<ReturnType<typeof admit>>, { admitted: true }>;

/**
 * A tunnelled destination is checked by the name its ClientHello shows; with Encrypted Client
 * Hello that name is a cover, and the server behind it (a CDN's front) may route to any other.
 */
function encryptedHelloReason(rule: Admitted['decision']['rule']): string {
  const intercept =
    rule === undefined || rule.tls === 'passthrough'
      ? ''
      : ` or have egress[${rule.index}] intercepted (methods, paths or scan)`;
  return `the ClientHello uses Encrypted Client Hello, which hides the server name a tunnel is checked by; turn ECH off in the client (Chromium: --disable-features=EncryptedClientHello)${intercept}`;
}

/** What the rule that admitted a tunnel offers a client its interception failed. */
function interceptionWayOut(rule: EgressRule | undefined): string {
  if (rule === undefined) return '';
  if (plainHttpOnly(rule))
    return `; egress[${rule.index}] (${rule.destination.canonical}) admits plain http only, so nothing over TLS passes there`;
  return `; a client that cannot be intercepted (it pins certificates, or speaks only HTTP/2) needs egress[${rule.index}] to say "tls: passthrough" instead of methods, paths and scan (the destination is then checked by host, port and SNI only)`;
}
