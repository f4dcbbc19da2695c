// The origin servers the benchmark talks to, in their own process: plain HTTP answering a
// small body, and HTTPS serving a large body for tunnel throughput (a small one at /small). Prints one JSON line
// with both ports once listening.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { readFileSync } from 'node:fs';

const [keyFile = '', certFile = '', bigBytesText = '0'] = process.argv.slice(2);
const small = Buffer.alloc(1024, 'a');
const chunk = Buffer.alloc(1024 * 1024, 'b');
const bigBytes = Number(bigBytesText);

const http = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': small.length });
  res.end(small);
});
const https = createTlsServer(
  { key: readFileSync(keyFile), cert: readFileSync(certFile) },
  (req, res) => {
    if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': small.length });
      return void res.end(small);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bigBytes });
    let left = bigBytes;
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  },
);
http.listen(0, '127.0.0.1', () =>
  https.listen(0, '127.0.0.1', () => {
    const port = (server: typeof http | typeof https) =>
      (server.address() as { port: number }).port;
    process.stdout.write(`${JSON.stringify({ http: port(http), https: port(https) })}\n`);
  }),
);
process.on('SIGTERM', () => process.exit(0));
