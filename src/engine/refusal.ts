// How a refused request is answered: one shape for every transport, so the client, the
// receipt and the log line say the same thing.

import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { EngineLimits } from './limits.js';

export const BLOCK_HEADER = 'X-Pipelock-Egress-Block';

export interface Refusal {
  readonly status: number;
  /**
   * The layer that refused: destination, port, path, method, ssrf, dlp, host, sni, tls,
   * websocket, limit, request, evidence; for a request that was sent, upstream or client.
   */
  readonly layer: string;
  readonly reason: string;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function body(refusal: Refusal): string {
  return `blocked: ${refusal.reason}\n`;
}

export function refuseResponse(res: ServerResponse, refusal: Refusal): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = body(refusal);
  res.writeHead(refusal.status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    [BLOCK_HEADER]: refusal.layer,
  });
  res.end(text);
}

/**
 * How long a socket answered by `refuseSocket` stays half-open for its client to read the
 * answer and close. node:http tracks no response on it, so a client that never closes would
 * otherwise hold it (and the engine's shutdown, which waits for every socket) for ever.
 */
export const REFUSED_SOCKET_LINGER_MS = 1_000;

/** For a raw socket (CONNECT before the tunnel, or a request the HTTP parser rejected). */
export function refuseSocket(socket: Duplex, refusal: Refusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = body(refusal);
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? 'Error'}\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
      `${BLOCK_HEADER}: ${refusal.layer}\r\nConnection: close\r\n\r\n${text}`,
  );
  // Destroyed at once, a socket with unread client bytes would answer with a reset that can
  // discard the refusal before the client reads it: it lingers briefly instead.
  const linger = setTimeout(() => socket.destroy(), REFUSED_SOCKET_LINGER_MS);
  socket.once('close', () => clearTimeout(linger));
}

/** The refusal for a request node:http's parser rejected (or timed out) before the engine saw it. */
export function clientErrorRefusal(
  error: NodeJS.ErrnoException,
  limits: Pick<EngineLimits, 'maxHeaderBytes' | 'requestTimeoutMs'>,
): Refusal {
  if (error.code === 'HPE_HEADER_OVERFLOW')
    return {
      status: 431,
      layer: 'limit',
      reason: `the request headers exceed ${limits.maxHeaderBytes} bytes`,
    };
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return {
      status: 408,
      layer: 'limit',
      reason: `the request was not received within ${limits.requestTimeoutMs} ms`,
    };
  return {
    status: 400,
    layer: 'request',
    reason: `malformed request refused (${error.code ?? 'parse error'}: ${error.message})`,
  };
}
