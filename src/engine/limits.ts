import type { ServerOptions } from 'node:http';

/** Resource limits of the engine; each exceeded limit answers with its own status and a receipt. */
export interface EngineLimits {
  /** Request line and headers (431 beyond). */
  readonly maxHeaderBytes: number;
  /** Request body forwarded upstream (413 beyond). */
  readonly maxBodyBytes: number;
  /**
   * A body that must be scanned (a `scan` destination, or one a bound secret must be kept
   * from) is read whole, decompressed included, before it is judged (413 beyond).
   */
  readonly maxScanBytes: number;
  /** Bodies held for scanning at once, all requests together (503 beyond). */
  readonly maxScanBufferBytes: number;
  /**
   * The policy's own DLP patterns over one scan of a request (its URL, or its headers and
   * body): a pattern that backtracks longer is stopped, and the request refused 403 as one
   * that cannot be scanned.
   */
  readonly patternScanMs: number;
  /** A WebSocket message, fragments reassembled (closed with 1009 beyond). */
  readonly maxMessageBytes: number;
  /** Time to receive a whole request from the client (408 beyond). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive client connection is closed after this. */
  readonly idleTimeoutMs: number;
  /** An origin's status line and headers (502 beyond): answers carry longer ones than requests. */
  readonly maxResponseHeaderBytes: number;
  /** Time to connect upstream and get response headers (504 beyond). */
  readonly upstreamTimeoutMs: number;
  /** A CONNECT client must send its ClientHello within this. */
  readonly clientHelloTimeoutMs: number;
  /** A tunnel or WebSocket with no traffic either way is closed after this. */
  readonly tunnelIdleMs: number;
  /**
   * Client connections open at once, tunnels and WebSockets included: one more is closed
   * unread, with a receipt (each costs memory, and past the file limit one would be dropped
   * unrecorded).
   */
  readonly maxClientConnections: number;
  /** Open CONNECT tunnels and WebSockets (outside a tunnel) at once (503 beyond). */
  readonly maxActiveTunnels: number;
  /** Requests in flight to one upstream address, and the sockets kept to it (503 beyond). */
  readonly maxRequestsPerUpstream: number;
  /** Upstream connection pools kept at once; idle ones are closed first (503 if all are busy). */
  readonly maxUpstreams: number;
}

export const DEFAULT_LIMITS: EngineLimits = {
  maxHeaderBytes: 16 * 1024,
  // Streamed, never buffered: the cap bounds what one request may upload (issue: 50 MB must pass).
  maxBodyBytes: 64 * 1024 * 1024,
  maxScanBytes: 8 * 1024 * 1024,
  maxScanBufferBytes: 64 * 1024 * 1024,
  patternScanMs: 1_000,
  maxMessageBytes: 1024 * 1024,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  maxResponseHeaderBytes: 64 * 1024,
  upstreamTimeoutMs: 30_000,
  clientHelloTimeoutMs: 10_000,
  tunnelIdleMs: 120_000,
  maxClientConnections: 4_096,
  maxActiveTunnels: 256,
  maxRequestsPerUpstream: 64,
  maxUpstreams: 256,
};

/** The node:http server settings that enforce the header, time and keep-alive limits. */
export function httpServerOptions(limits: EngineLimits): ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    // Node reports both as one error: a 408 can only state the limit if they are the same.
    headersTimeout: limits.requestTimeoutMs,
    // Node checks these timeouts on this interval (default 30 s): a short limit needs a short check.
    connectionsCheckingInterval: Math.max(
      25,
      Math.min(1_000, Math.floor(limits.requestTimeoutMs / 4)),
    ),
    keepAliveTimeout: limits.idleTimeoutMs,
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    // Node would answer a missing Host itself (a bare 400, no receipt); the engine does it.
    requireHostHeader: false,
  };
}
