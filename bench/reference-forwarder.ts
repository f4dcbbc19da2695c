// A minimal absolute-form forwarder (node:http server, undici pool) and CONNECT relay (two
// piped sockets, to 127.0.0.1 whatever the name: the bench's origins are all there); no
// policy, no evidence, no limits. Run in its own process, measured beside the engine, so that
// a ratio can be read as the engine's own cost or as what proxying through Node costs at all
// on the machine. Prints one JSON line once listening.
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { Pool } from 'undici';

const pools = new Map<string, Pool>();

const server = createServer((req, res) => {
  const target = new URL(req.url ?? '');
  let pool = pools.get(target.origin);
  if (!pool) pools.set(target.origin, (pool = new Pool(target.origin, { connections: 128 })));
  pool
    .request({ method: 'GET', path: `${target.pathname}${target.search}` })
    .then((answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.body.pipe(res);
    })
    .catch(() => {
      res.statusCode = 502;
      res.end();
    });
});
server.on('connect', (req, client, head) => {
  const port = Number(new URL(`http://${req.url ?? ''}`).port);
  const upstream = connect(port, '127.0.0.1', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    upstream.write(head);
    client.pipe(upstream).pipe(client);
  });
  const close = () => {
    upstream.destroy();
    client.destroy();
  };
  upstream.on('error', close);
  client.on('error', close);
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
