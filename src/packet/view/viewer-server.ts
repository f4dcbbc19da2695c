// Serves a ViewerApp over HTTP on a loopback address.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../../cli/loopback-listen.js';
import type { PacketView } from './load-packet.js';
import { ViewerApp } from './viewer-app.js';

export interface RunningViewer {
  /** The overview page, token included. */
  readonly url: string;
  close(): Promise<void>;
}

function hostNames(address: AddressInfo): string[] {
  const port = address.port;
  const literal = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  // On port 80 a browser leaves the port out of Host.
  const portless = port === 80 ? [literal, 'localhost'] : [];
  return [`${literal}:${port}`, `localhost:${port}`, ...portless];
}

export async function serveViewer(view: PacketView, listen: ListenAddress): Promise<RunningViewer> {
  const token = randomBytes(16).toString('hex');
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hosts = hostNames(address);
  const app = new ViewerApp(view, token, hosts);
  server.on('request', (req, res) => {
    const response = app.handle({
      method: req.method ?? '',
      url: req.url ?? '/',
      host: req.headers.host,
    });
    res.writeHead(response.status, {
      ...response.headers,
      'Content-Length': Buffer.byteLength(response.body),
    });
    res.end(req.method === 'HEAD' ? undefined : response.body);
  });
  return {
    url: `http://${hosts[0] ?? ''}/${token}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
