// node:http enforces a server's requestTimeout and headersTimeout by a sweep over its
// connections that it starts when the server begins listening. The inner server of
// intercepted tunnels never listens (it is handed decrypted sockets), so its sweep is started
// the same way. It is checked: without it, a request trickled inside a tunnel would hold the
// tunnel for ever, and an engine that cannot time requests out must not start.

import type { Server } from 'node:http';

const SWEEP = 'http.server.connectionsCheckingInterval';

export function startRequestSweep(server: Server): void {
  server.emit('listening');
  const sweep = Object.getOwnPropertySymbols(server).find((key) => key.description === SWEEP);
  if (sweep === undefined || (server as unknown as Record<symbol, unknown>)[sweep] === undefined)
    throw new Error(
      `node:http of Node ${process.version} did not start its request-timeout sweep for a server that does not listen: requests inside intercepted tunnels could not be timed out (run the engine on Node 20 or 24)`,
    );
}

/** Stops the sweep (the server has no listening socket to close). */
export function stopRequestSweep(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
