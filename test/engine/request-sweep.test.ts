import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { test } from 'node:test';
import type { Server } from 'node:http';
import { startRequestSweep, stopRequestSweep } from '../../src/engine/request-sweep.js';

test('the request-timeout sweep starts for an HTTP server that does not listen', async () => {
  const server = createServer({ connectionsCheckingInterval: 50 });
  startRequestSweep(server);
  await stopRequestSweep(server);
});

test('a server without node:http’s sweep is refused, not run without request timeouts', () => {
  const notHttp = createNetServer() as unknown as Server;
  assert.throws(() => startRequestSweep(notHttp), /did not start its request-timeout sweep/);
});
