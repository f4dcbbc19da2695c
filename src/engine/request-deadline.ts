// The request timeout for connections served by an HTTP server that never listens (the inner
// server of intercepted tunnels). node:http enforces its requestTimeout by a sweep that only a
// listening server runs, and a socket's idle timeout is reset by every byte a client trickles.

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Gives each request on a watched connection `timeoutMs` from its first byte to its last:
 * `expire` is called for a connection whose request is late, as node:http's sweep would.
 */
export class RequestDeadlines {
  private readonly clocks = new WeakMap<Socket, Clock>();
  private readonly readers = new WeakMap<Socket, () => void>();

  constructor(
    private readonly timeoutMs: number,
    private readonly expire: (socket: Socket) => void,
  ) {}

  /** Call once the server has the connection (listening for data earlier would bypass it). */
  watch(socket: Socket): void {
    // Bytes that arrive while no request is under way begin the next one.
    const onData = () => {
      if (!this.clocks.has(socket)) this.start(socket);
    };
    this.readers.set(socket, onData);
    socket.on('data', onData);
    socket.once('close', () => this.unwatch(socket));
  }

  /**
   * A request's headers were parsed: its clock (started by its first byte, or now if those
   * came with the previous request) runs until its body has been read.
   */
  received(req: IncomingMessage): void {
    const socket = req.socket;
    if (!this.readers.has(socket)) return;
    const clock = this.clocks.get(socket) ?? this.start(socket);
    clock.request = req;
    req.once('end', () => this.stop(socket));
  }

  /** The connection left HTTP (an upgrade, a refused CONNECT) or closed: no more requests. */
  unwatch(socket: Socket): void {
    this.stop(socket);
    const onData = this.readers.get(socket);
    if (onData) socket.off('data', onData);
    this.readers.delete(socket);
  }

  private start(socket: Socket): Clock {
    const clock: Clock = {
      timer: setTimeout(() => {
        // Received whole, its body only unread yet (the upstream is slow to take it): in time.
        if (clock.request?.complete) return this.stop(socket);
        this.unwatch(socket);
        this.expire(socket);
      }, this.timeoutMs),
      request: undefined,
    };
    this.clocks.set(socket, clock);
    return clock;
  }

  private stop(socket: Socket): void {
    clearTimeout(this.clocks.get(socket)?.timer);
    this.clocks.delete(socket);
  }
}

interface Clock {
  readonly timer: NodeJS.Timeout;
  /** The request being received, once its headers are parsed. */
  request: IncomingMessage | undefined;
}
