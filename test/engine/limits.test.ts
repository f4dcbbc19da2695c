import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, writeSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ProxyAgent, request } from 'undici';
import {
  assertValid,
  cleanup,
  curl,
  decisions,
  echo,
  parseCurlResponse,
  rawExchange,
  readEvidenceDir,
  sealedRecords,
  startEngine,
  startOrigin,
  statusOf,
  tempDir,
  waitFor,
  type EngineSetup,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_LIMITS, httpServerOptions } from '../../src/engine/limits.js';

interface Fixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  readonly host: string;
  close(): Promise<void>;
}

async function fixture(
  setup: Omit<EngineSetup, 'policy'> = {},
  handler: (req: IncomingMessage, res: ServerResponse) => void = echo,
  port?: (originPort: number) => number,
): Promise<Fixture> {
  const origin = await startOrigin(handler);
  const allowed = port ? port(origin.port) : origin.port;
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    ...setup,
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${allowed}]
  - destination: "127.0.0.1"
    ports: [${allowed}]
default_deny: true
`,
  });
  return {
    origin,
    proxy,
    host: `api.example.test:${allowed}`,
    async close() {
      await proxy.stop();
      await origin.close();
      if (!setup.dir) cleanup(join(proxy.dir, '..'));
    },
  };
}

/** The single block receipt of a request the engine could not even parse. */
function onlyBlock(proxy: RunningEngine, layer: string) {
  const evidence = readEvidenceDir(proxy.dir);
  assertValid(evidence, true);
  const blocks = decisions(evidence.receipts).filter((r) => r.action_record.verdict === 'block');
  assert.equal(blocks.length, 1, `block receipts: ${blocks.length}`);
  assert.equal(blocks[0]?.action_record.layer, layer);
  return blocks[0];
}

const probes: Array<[string, (host: string) => string, number, string]> = [
  [
    'Content-Length together with Transfer-Encoding',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://${h}/smuggled HTTP/1.1\r\nHost: ${h}\r\n\r\n`,
    400,
    'request',
  ],
  [
    'two different Content-Lengths',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc`,
    400,
    'request',
  ],
  [
    'two equal Content-Lengths',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`,
    400,
    'request',
  ],
  [
    'an obs-folded header',
    (h) => `GET http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nX-Folded: a\r\n b\r\n\r\n`,
    400,
    'request',
  ],
  [
    'a control byte in a header value',
    (h) => `GET http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nX-Bad: a\x01b\r\n\r\n`,
    400,
    'request',
  ],
  [
    'a space in a header name',
    (h) => `GET http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nX Bad: a\r\n\r\n`,
    400,
    'request',
  ],
  [
    'a bare LF line ending',
    (h) => `GET http://${h}/r/x HTTP/1.1\nHost: ${h}\nX-A: b\n\n`,
    400,
    'request',
  ],
  [
    'a chunked body with an invalid chunk size',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
    400,
    'request',
  ],
  [
    'a Transfer-Encoding that does not end in chunked',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    400,
    'request',
  ],
  [
    // node:http undoes the chunking only: the body would reach the scanner still compressed,
    // and the origin without the header saying so.
    'a transfer coding other than chunked (gzip, chunked)',
    (h) =>
      `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    501,
    'request',
  ],
  [
    // The parser fails on the body after the headers were handed over: one request, one receipt.
    'a transfer coding without chunked (gzip): its body cannot be delimited',
    (h) => `POST http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: gzip\r\n\r\nhello`,
    501,
    'request',
  ],
  [
    'an HTTP/1.1 request without Host',
    (h) => `GET http://${h}/r/x HTTP/1.1\r\nConnection: close\r\n\r\n`,
    400,
    'request',
  ],
  [
    'an absolute-form ws:// target (not a WebSocket route)',
    (h) => `GET ws://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`,
    400,
    'request',
  ],
  [
    'oversized headers',
    (h) =>
      `GET http://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\n${Array.from({ length: 40 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(1000)}\r\n`).join('')}\r\n`,
    431,
    'limit',
  ],
];

for (const [name, build, status, layer] of probes) {
  test(`smuggling probe refused with a receipt: ${name}`, async () => {
    const f = await fixture();
    try {
      const { text } = await rawExchange(f.proxy.port, build(f.host));
      assert.equal(statusOf(text), status, text);
      assert.match(text, new RegExp(`X-Pipelock-Egress-Block: ${layer}`));
      assert.match(text, /\r\n\r\nblocked: /);
      await f.proxy.stop();
      assert.equal(f.origin.hits, 0, 'the origin was reached');
      onlyBlock(f.proxy, layer);
    } finally {
      await f.close();
    }
  });
}

test('413 for a Content-Length over the body limit, before anything is forwarded', async () => {
  const f = await fixture({ limits: { maxBodyBytes: 1024 } });
  const dir = tempDir();
  try {
    const file = join(dir, 'body.bin');
    writeFileSync(file, randomBytes(4096));
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '--data-binary',
      `@${file}`,
      `http://${f.host}/r/big`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 413);
    assert.equal(response.headers['x-pipelock-egress-block'], 'limit');
    await f.proxy.stop();
    assert.equal(f.origin.hits, 0);
    const block = onlyBlock(f.proxy, 'limit');
    assert.match(block?.action_record.pattern ?? '', /4096 bytes\) exceeds 1024/);
  } finally {
    cleanup(dir);
    await f.close();
  }
});

test('413 for a Content-Length over the body limit: the connection closes, and the client leaving mid-body is no second request', async () => {
  const f = await fixture({ limits: { maxBodyBytes: 1024 } });
  try {
    const { text, closed } = await rawExchange(f.proxy.port, [
      `POST http://${f.host}/r/big HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 70000000\r\n\r\n`,
      randomBytes(64 * 1024),
    ]);
    assert.equal(statusOf(text), 413, text);
    assert.match(text, /\r\nConnection: close\r\n/i);
    assert.equal(closed, true);
    await f.proxy.stop();
    assert.equal(f.origin.hits, 0);
    onlyBlock(f.proxy, 'limit');
  } finally {
    await f.close();
  }
});

test('413 for a chunked body that grows over the limit, with a limit receipt', async () => {
  let received = 0;
  const f = await fixture({ limits: { maxBodyBytes: 64 * 1024 } }, (req, res) => {
    req.on('data', (chunk: Buffer) => (received += chunk.length));
    req.on('end', () => res.end('origin answered'));
    req.on('error', () => undefined);
  });
  const dir = tempDir();
  try {
    const file = join(dir, 'body.bin');
    writeFileSync(file, randomBytes(1024 * 1024));
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '-H',
      'Transfer-Encoding: chunked',
      '--data-binary',
      `@${file}`,
      `http://${f.host}/r/chunked`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 413, response.body.toString());
    assert.equal(response.headers['x-pipelock-egress-block'], 'limit');
    assert.ok(received <= 64 * 1024, `the origin received ${received} bytes`);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    const records = decisions(evidence.receipts).map((r) => r.action_record);
    assert.deepEqual(
      records.map((r) => [r.verdict, r.layer ?? '']),
      [
        ['allow', ''],
        ['block', 'limit'],
      ],
    );
    assert.equal(records[0]?.action_id, records[1]?.action_id, 'one action, decision then block');
  } finally {
    cleanup(dir);
    await f.close();
  }
});

test('408 when a request does not arrive within the request timeout', async () => {
  const f = await fixture({ limits: { requestTimeoutMs: 400 } });
  try {
    const started = Date.now();
    const { text } = await rawExchange(
      f.proxy.port,
      `GET http://${f.host}/r/slow HTTP/1.1\r\nHost: ${f.host}\r\n`,
      8_000,
    );
    const elapsed = Date.now() - started;
    assert.equal(statusOf(text), 408, text);
    assert.match(text, /X-Pipelock-Egress-Block: limit/);
    assert.ok(elapsed < 4_000, `the timeout fired after ${elapsed} ms`);
    await f.proxy.stop();
    assert.equal(f.origin.hits, 0);
    onlyBlock(f.proxy, 'limit');
  } finally {
    await f.close();
  }
});

test('the headers get the request timeout a 408 states, not a shorter one', () => {
  const options = httpServerOptions(DEFAULT_LIMITS);
  assert.equal(options.headersTimeout, DEFAULT_LIMITS.requestTimeoutMs);
  assert.equal(options.requestTimeout, DEFAULT_LIMITS.requestTimeoutMs);
});

test('an admitted request whose body is dripped past the request timeout: 408, recorded as its own outcome', async () => {
  const f = await fixture({ limits: { requestTimeoutMs: 800 } });
  try {
    const { text } = await rawExchange(
      f.proxy.port,
      [
        `POST http://${f.host}/r/drip HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 100000\r\n\r\n`,
        ...Array.from({ length: 40 }, () => 'x'),
      ],
      6_000,
      100,
    );
    assert.equal(statusOf(text), 408, text);
    assert.match(text, /the request was not received within 800 ms/);
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      records.map((r) => [r.method, r.target, r.decision_phase ?? '', r.verdict, r.pattern ?? '']),
      [
        [`POST`, `http://${f.host}/r/drip`, 'intent', 'allow', ''],
        [
          `POST`,
          `http://${f.host}/r/drip`,
          'outcome',
          'allow',
          'status=408 layer=limit reason=the request was not received within 800 ms',
        ],
      ],
    );
    assert.equal(records[0]?.action_id, records[1]?.action_id);
  } finally {
    await f.close();
  }
});

test('a body held for scanning that times out is one 408 for its request; a refused body timing out is no second request', async () => {
  const origin = await startOrigin(echo);
  const host = `api.example.test:${origin.port}`;
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    limits: { requestTimeoutMs: 800 },
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
    scan: true
  - destination: "127.0.0.1"
    ports: [${origin.port}]
`,
  });
  try {
    const head = (path: string) =>
      `POST http://${host}${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100\r\n\r\nabc`;
    // Read whole before it is judged: the timeout is this request's, named by its URL.
    const held = await rawExchange(proxy.port, head('/r/held'), 4_000);
    assert.equal(statusOf(held.text), 408, held.text);
    // Refused at once for its URL, its body is then read and dropped: when that times out,
    // there is no new request to answer or record.
    const token = `ghp_${'a1B2c3D4e5'.repeat(3)}a1B2c3`;
    const refused = await rawExchange(proxy.port, head(`/r/refused?t=${token}`), 4_000);
    assert.equal(statusOf(refused.text), 403, refused.text);
    assert.equal(refused.text.split('HTTP/1.1 ').length - 1, 1, refused.text);
    assert.ok(refused.closed, 'the connection closes when the body times out');
    const records = await sealedRecords(proxy);
    assert.deepEqual(
      records.map((r) => [r.target, r.verdict, r.layer ?? '', r.pattern ?? '']),
      [
        [`http://${host}/r/held`, 'block', 'limit', 'the request was not received within 800 ms'],
        [
          `http://${host}/r/refused?t=[REDACTED:github-token]`,
          'block',
          'dlp',
          'DLP match: github-token in the URL',
        ],
      ],
    );
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

test('an error on a connection is the request whose body is still coming, else a new one: one receipt per request', async () => {
  // The origin answers without waiting for the body.
  const f = await fixture({ limits: { requestTimeoutMs: 800 } }, (_req, res) => res.end('early'));
  try {
    // Pipelined behind a refused request, a malformed one is a request of its own.
    await rawExchange(
      f.proxy.port,
      `GET http://deny.example.test/x HTTP/1.1\r\nHost: deny.example.test\r\n\r\nGARBAGE\x01 /x HTTP/1.1\r\n\r\n`,
      3_000,
    );
    // Answered while its body still came, a request whose body then times out gets no
    // second answer and no second receipt.
    const early = await rawExchange(
      f.proxy.port,
      `POST http://${f.host}/r/early HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 100\r\n\r\nabc`,
      3_000,
    );
    assert.equal(early.text.split('HTTP/1.1 ').length - 1, 1, early.text);
    assert.equal(statusOf(early.text), 200, early.text);
    // A client that half-closes mid-body: its request's own receipt says so, no other.
    const socket = connect(f.proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      `POST http://${f.host}/r/cut HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 100\r\n\r\nabc`,
    );
    socket.resume();
    await once(socket, 'close');
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      records.map((r) => [r.target, r.decision_phase ?? '', r.verdict, r.layer ?? '']),
      [
        ['http://deny.example.test/x', '', 'block', 'destination'],
        ['pipelock://request/unparsed', '', 'block', 'request'],
        [`http://${f.host}/r/early`, 'intent', 'allow', ''],
        [`http://${f.host}/r/cut`, 'intent', 'allow', ''],
        [`http://${f.host}/r/cut`, 'outcome', 'allow', 'outcome'],
      ],
    );
  } finally {
    await f.close();
  }
});

test('a malformed or late request pipelined behind one still being answered waits for that answer', async () => {
  // The origin answers after the next request's bytes have reached the engine.
  const f = await fixture({ limits: { requestTimeoutMs: 800 } }, (req, res) => {
    req.resume();
    if (req.method === 'POST') req.on('end', () => res.end('posted'));
    else setTimeout(() => res.end('slow answer'), req.url === '/r/slower' ? 1_500 : 300);
  });
  try {
    const first = `GET http://${f.host}/r/slow HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    const malformed = await rawExchange(f.proxy.port, `${first}GARBAGE\x01 /x HTTP/1.1\r\n\r\n`);
    assert.match(
      malformed.text,
      /^HTTP\/1\.1 200 [^]*slow answer\r?\n?HTTP\/1\.1 400 /,
      malformed.text,
    );
    assert.ok(malformed.closed);
    // A partial request behind it times out after the first is answered: 408, in order.
    const late = await rawExchange(
      f.proxy.port,
      `${first}GET http://${f.host}/r/partial HTTP/1.1\r\n`,
    );
    assert.match(late.text, /^HTTP\/1\.1 200 [^]*slow answer\r?\n?HTTP\/1\.1 408 /, late.text);
    // A request whose own body times out while the one before is still being answered.
    const slower = `GET http://${f.host}/r/slower HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    const post = `POST http://${f.host}/r/post HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 100\r\n\r\nabc`;
    const starved = await rawExchange(f.proxy.port, `${slower}${post}`);
    assert.match(
      starved.text,
      /^HTTP\/1\.1 200 [^]*slow answer\r?\n?HTTP\/1\.1 408 /,
      starved.text,
    );
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      // Each is recorded when judged: the refusal at once, the allowed request once decided.
      records.map((r) => [r.target, r.decision_phase ?? '', r.verdict, r.layer ?? '']).sort(),
      [
        [`http://${f.host}/r/post`, 'intent', 'allow', ''],
        [`http://${f.host}/r/post`, 'outcome', 'allow', 'outcome'],
        [`http://${f.host}/r/slow`, 'intent', 'allow', ''],
        [`http://${f.host}/r/slow`, 'intent', 'allow', ''],
        [`http://${f.host}/r/slower`, 'intent', 'allow', ''],
        ['pipelock://request/unparsed', '', 'block', 'limit'],
        ['pipelock://request/unparsed', '', 'block', 'request'],
      ],
    );
  } finally {
    await f.close();
  }
});

test('an upgrade or a CONNECT pipelined behind a request still being answered is answered after it', async () => {
  const f = await fixture({}, (_req, res) => {
    setTimeout(() => res.end('slow answer'), 300);
  });
  try {
    const slow = `GET http://${f.host}/r/slow HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    const upgrade = `GET /ws?url=http://${f.host}/ HTTP/1.1\r\nHost: ${f.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    const tunnel = `CONNECT deny.example.test:443 HTTP/1.1\r\nHost: deny.example.test:443\r\n\r\n`;
    for (const [next, status] of [
      [upgrade, '400'],
      [tunnel, '403'],
    ] as const) {
      const { text } = await rawExchange(f.proxy.port, `${slow}${next}`, 3_000);
      assert.deepEqual(
        [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]),
        ['200', status],
        text,
      );
      assert.match(text, /slow answerHTTP\/1\.1 /);
    }
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      records.filter((r) => r.decision_phase === 'outcome').map((r) => r.pattern),
      [],
      'no answer was cut',
    );
  } finally {
    await f.close();
  }
});

test('a request expecting 100-continue pipelined behind a slow answer gets no 100 inside that answer', async () => {
  const f = await fixture({}, (req, res) => {
    req.resume();
    if (req.url === '/r/slow') setTimeout(() => res.end('slow'), 500);
    else req.on('end', () => res.end(`done ${req.url}`));
  });
  try {
    const slow = `GET http://${f.host}/r/slow HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    const post = `POST http://${f.host}/r/post HTTP/1.1\r\nHost: ${f.host}\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`;
    const { text, closed } = await rawExchange(f.proxy.port, `${slow}${post}`, 3_000);
    assert.deepEqual(
      [...text.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]),
      ['200', '200'],
      text,
    );
    assert.match(text, /slow[^]*\r\n\r\ndone \/r\/post$/);
    // node:http ends a connection after answering an Expect it sent no 100 to.
    assert.ok(closed);
  } finally {
    await f.close();
  }
});

test('a client gone with answers queued behind another frees their upstream slots and records them', async () => {
  const f = await fixture({ limits: { maxRequestsPerUpstream: 2 } }, (req, res) => {
    if (req.url === '/r/slow') setTimeout(() => res.end('slow'), 1_500);
    else res.end('fast');
  });
  try {
    const slow = `GET http://${f.host}/r/slow HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    const queued = `GET http://${f.host}/r/queued HTTP/1.1\r\nHost: ${f.host}\r\n\r\n`;
    // The client leaves while /r/slow is still answered, /r/queued answered behind it.
    await rawExchange(f.proxy.port, `${slow}${queued}`, 400);
    // Both slots are free again: two requests at once to the same upstream pass.
    const both = await Promise.all(
      [1, 2].map(() =>
        curl([
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--proxy',
          f.proxy.proxyUrl,
          `http://${f.host}/r/slow`,
        ]),
      ),
    );
    assert.deepEqual(
      both.map((result) => result.stdout.toString()),
      ['200', '200'],
    );
    const started = Date.now();
    const records = await sealedRecords(f.proxy);
    assert.ok(Date.now() - started < 3_000, 'nothing held the engine at shutdown');
    const queuedOutcome = records.find(
      (r) => r.target === `http://${f.host}/r/queued` && r.decision_phase === 'outcome',
    );
    assert.match(queuedOutcome?.pattern ?? '', /^status=499 layer=client/);
  } finally {
    await f.close();
  }
});

test('502 with an allow receipt when the upstream refuses the connection', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const f = await fixture({}, echo, () => deadPort);
  try {
    const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, `http://${f.host}/r/refused`]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 502);
    assert.equal(response.headers['x-pipelock-egress-block'], 'upstream');
    assert.match(response.body.toString(), /ECONNREFUSED/);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    assert.equal(decisions(evidence.receipts)[0]?.action_record.verdict, 'allow');
    const outcome = evidence.receipts.find((r) => r.action_record.decision_phase === 'outcome');
    assert.match(
      outcome?.action_record.pattern ?? '',
      /^status=502 layer=upstream reason=.*ECONNREFUSED/,
    );
    assert.equal(
      outcome?.action_record.action_id,
      decisions(evidence.receipts)[0]?.action_record.action_id,
    );
  } finally {
    await f.close();
  }
});

test("an origin's headers pass up to 64 KiB; longer ones are a 502 saying so, with a receipt", async () => {
  const f = await fixture({}, (req, res) => {
    res.setHeader('x-big', 'a'.repeat(req.url === '/r/long' ? 70_000 : 40_000));
    res.end('ok');
  });
  try {
    const fits = await curl(['-i', '--proxy', f.proxy.proxyUrl, `http://${f.host}/r/fits`]);
    assert.equal(parseCurlResponse(fits.stdout).status, 200);
    const long = await curl(['-i', '--proxy', f.proxy.proxyUrl, `http://${f.host}/r/long`]);
    const response = parseCurlResponse(long.stdout);
    assert.equal(response.status, 502);
    const reason = `upstream http://${f.host} answered with headers over the ${DEFAULT_LIMITS.maxResponseHeaderBytes} bytes the proxy takes`;
    assert.match(response.body.toString(), new RegExp(reason.replace(/[.]/g, '\\.')));
    await f.proxy.stop();
    const outcome = readEvidenceDir(f.proxy.dir).receipts.find(
      (r) => r.action_record.decision_phase === 'outcome',
    );
    assert.equal(outcome?.action_record.pattern, `status=502 layer=upstream reason=${reason}`);
  } finally {
    await f.close();
  }
});

for (const [how, tunnelled] of [
  ['through the forward proxy', []],
  // A tunnel's connection idles as long as the origin is silent: its idle limit, the same
  // here, must not cut it before the answer.
  ['inside a tunnel whose idle limit is the same', ['--proxytunnel']],
] as const) {
  test(`504 when the upstream does not answer within the upstream timeout, ${how}`, async () => {
    const held: ServerResponse[] = [];
    const f = await fixture(
      { limits: { upstreamTimeoutMs: 300, idleTimeoutMs: 300 } },
      (_req, res) => void held.push(res),
    );
    try {
      const started = Date.now();
      const result = await curl([
        '-i',
        ...tunnelled,
        '--proxy',
        f.proxy.proxyUrl,
        `http://${f.host}/r/slow`,
      ]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, 504);
      assert.equal(response.headers['x-pipelock-egress-block'], 'upstream');
      assert.ok(Date.now() - started < 5_000);
      assert.equal(held.length, 1);
      await f.proxy.stop();
      const outcome = readEvidenceDir(f.proxy.dir).receipts.find(
        (r) => r.action_record.decision_phase === 'outcome',
      );
      assert.match(
        outcome?.action_record.pattern ?? '',
        /^status=504 layer=upstream reason=.*timed out/,
      );
    } finally {
      for (const res of held) res.destroy();
      await f.close();
    }
  });
}

test('503 with a limit receipt when too many requests are in flight to one upstream', async () => {
  const held: ServerResponse[] = [];
  const f = await fixture(
    { limits: { maxRequestsPerUpstream: 1 } },
    (_req, res) => void held.push(res),
  );
  const agent = new ProxyAgent({ uri: f.proxy.proxyUrl, proxyTunnel: false });
  try {
    const first = request(`http://${f.host}/r/first`, { dispatcher: agent });
    await waitFor(() => held.length === 1, 5_000, 'the first request at the origin');
    const second = await request(`http://${f.host}/r/second`, { dispatcher: agent });
    assert.equal(second.statusCode, 503);
    assert.equal(second.headers['x-pipelock-egress-block'], 'limit');
    assert.match(await second.body.text(), /too many requests in flight/);
    held[0]?.end('done');
    const done = await first;
    assert.equal(done.statusCode, 200);
    await done.body.dump();
    assert.equal(f.origin.hits, 1);
    await f.proxy.stop();
    const records = decisions(readEvidenceDir(f.proxy.dir).receipts).map((r) => r.action_record);
    const second_ = records.filter((r) => r.target.endsWith('/r/second'));
    assert.deepEqual(
      second_.map((r) => r.verdict),
      ['allow', 'block'],
    );
    assert.equal(second_[1]?.layer, 'limit');
  } finally {
    for (const res of held) res.destroy();
    await agent.close();
    await f.close();
  }
});

test('evidence on a full disk: requests are refused 503 (layer evidence) and never reach the origin unrecorded', async () => {
  const root = tempDir();
  const mount = join(root, 'tiny');
  mkdirSync(mount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount]);
  let f: Fixture | undefined;
  try {
    const errors: Error[] = [];
    f = await fixture({
      dir: join(mount, 'evidence'),
      onEvidenceError: (e) => void errors.push(e),
    });
    // Fill the rest of the file system.
    const fd = openSync(join(mount, 'filler'), 'w');
    try {
      const block = Buffer.alloc(4096, 1);
      for (let i = 0; i < 64; i++) writeSync(fd, block);
    } catch {
      // ENOSPC: full.
    } finally {
      closeSync(fd);
    }
    // The last page of the evidence file may still hold a line or two: those requests are
    // recorded and pass. From the first refused write on, everything is refused.
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const result = await curl([
        '-i',
        '--proxy',
        f.proxy.proxyUrl,
        `http://${f.host}/r/unrecorded-${i}`,
      ]);
      const response = parseCurlResponse(result.stdout);
      statuses.push(response.status);
      if (response.status === 503) {
        assert.equal(response.headers['x-pipelock-egress-block'], 'evidence');
        assert.match(response.body.toString(), /evidence could not be written/);
      }
    }
    const firstRefusal = statuses.indexOf(503);
    assert.ok(firstRefusal >= 0, `never refused: ${statuses.join(',')}`);
    assert.ok(
      statuses.slice(firstRefusal).every((s) => s === 503),
      statuses.join(','),
    );
    assert.ok(
      statuses.slice(0, firstRefusal).every((s) => s === 200),
      statuses.join(','),
    );
    const passed = f.origin.hits;
    assert.equal(passed, firstRefusal);
    // A blocked request is still blocked.
    const blocked = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      `http://elsewhere.example.test/`,
    ]);
    assert.equal(parseCurlResponse(blocked.stdout).status, 403);
    assert.equal(f.origin.hits, passed);
    assert.ok(errors.length >= statuses.length - firstRefusal);
    const health = await curl([`${f.proxy.proxyUrl}/health`]);
    assert.equal((JSON.parse(health.stdout.toString()) as { status: string }).status, 'degraded');
    await f.proxy.stop();
    // Whatever did reach the disk is a verifiable prefix, holding every request that passed.
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, false);
    assert.equal(decisions(evidence.receipts).length, passed);
  } finally {
    await f?.close();
    execFileSync('umount', ['-l', mount]);
    cleanup(root);
  }
});

test('evidence at its file budget: requests are refused 503 (layer evidence), and the chain still seals', async () => {
  const f = await fixture({ maxEntriesPerFile: 4, maxEvidenceFiles: 3 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, `http://${f.host}/r/${i}`]);
      const response = parseCurlResponse(result.stdout);
      statuses.push(response.status);
      if (response.status === 503) {
        assert.equal(response.headers['x-pipelock-egress-block'], 'evidence');
        assert.match(response.body.toString(), /the evidence is full \(3 files/);
      }
    }
    const firstRefusal = statuses.indexOf(503);
    assert.ok(firstRefusal > 0, statuses.join(','));
    assert.deepEqual(
      statuses,
      statuses.map((_, i) => (i < firstRefusal ? 200 : 503)),
    );
    assert.equal(f.origin.hits, firstRefusal);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    assert.equal(decisions(evidence.receipts).length, firstRefusal);
    assert.ok(evidence.files.length <= 3, evidence.files.join(', '));
  } finally {
    await f.close();
  }
});

test('a request whose handling fails is refused 500 with a receipt; the engine goes on and its chain seals', async () => {
  const failures: string[] = [];
  const f = await fixture({ onInternalError: (message) => void failures.push(message) });
  // Fault injection: the next forward throws, as a bug in it would.
  const engine = f.proxy.engine as unknown as { forward: (...args: unknown[]) => Promise<void> };
  engine.forward = () => {
    delete (engine as { forward?: unknown }).forward;
    return Promise.reject(new Error('a bug in forwarding'));
  };
  try {
    const request = async (path: string) =>
      parseCurlResponse(
        (await curl(['-i', '--proxy', f.proxy.proxyUrl, `http://${f.host}${path}`])).stdout,
      );
    const failed = await request('/r/first');
    assert.equal(failed.status, 500);
    assert.equal(failed.headers['x-pipelock-egress-block'], 'engine');
    assert.equal(failed.body.toString(), 'blocked: internal error: a bug in forwarding\n');
    assert.deepEqual(failures, ['a bug in forwarding']);
    assert.equal((await request('/r/second')).status, 200);
    assert.equal(f.origin.hits, 1);
    const health = JSON.parse((await curl([`${f.proxy.proxyUrl}/health`])).stdout.toString()) as {
      status: string;
      counters: { internal_errors: number };
    };
    assert.deepEqual([health.status, health.counters.internal_errors], ['degraded', 1]);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    const blocks = decisions(evidence.receipts).filter((r) => r.action_record.layer === 'engine');
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0]?.action_record.pattern, 'internal error: a bug in forwarding');
  } finally {
    await f.close();
  }
});

test('a body that turns malformed after the response started cuts the connection, never splices a 400 into it', async () => {
  const f = await fixture({}, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial-');
    req.on('data', () => undefined);
    req.on('error', () => undefined);
  });
  try {
    const { text, closed } = await rawExchange(
      f.proxy.port,
      [
        `POST http://${f.host}/r/x HTTP/1.1\r\nHost: ${f.host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
        'zz\r\nbad\r\n',
      ],
      5_000,
      300,
    );
    assert.equal(closed, true);
    assert.equal(statusOf(text), 200);
    assert.match(text, /partial-/);
    assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, text);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    const blocks = decisions(evidence.receipts).filter((r) => r.action_record.verdict === 'block');
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0]?.action_record.layer, 'request');
  } finally {
    await f.close();
  }
});

test('Expect: 100-continue: a refused upload is answered before the client sends its body', async () => {
  const f = await fixture({ limits: { maxBodyBytes: 1024 } });
  try {
    const { text } = await rawExchange(
      f.proxy.port,
      `POST http://blocked.example.test/r/x HTTP/1.1\r\nHost: blocked.example.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(text), 403, text);
    assert.doesNotMatch(text, /100 Continue/);
    const big = await rawExchange(
      f.proxy.port,
      `POST http://${f.host}/r/x HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 5000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(big.text), 413, big.text);
    assert.doesNotMatch(big.text, /100 Continue/);
    const ok = await rawExchange(
      f.proxy.port,
      [
        `POST http://${f.host}/r/x HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        'hello',
      ],
      5_000,
      300,
    );
    assert.match(ok.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    assert.match(ok.text, /"length":5/);
    assert.equal(f.origin.hits, 1);
  } finally {
    await f.close();
  }
});

for (const expectation of ['200-ok', '100-continue, foo', '100-continue;a=b', 'x-100-continue']) {
  test(`an expectation other than 100-continue alone (${expectation}) is refused 417 with a receipt, before anything is forwarded`, async () => {
    const f = await fixture({});
    try {
      // No body sent: a client waiting for 100 gets its answer at once, not after a timeout.
      const { text } = await rawExchange(
        f.proxy.port,
        `POST http://${f.host}/r/x HTTP/1.1\r\nHost: ${f.host}\r\nContent-Length: 5\r\nExpect: ${expectation}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(text), 417, text);
      assert.match(text, /X-Pipelock-Egress-Block: request/);
      assert.match(
        text,
        /the request expects something other than 100-continue, which cannot be met/,
      );
      await f.proxy.stop();
      assert.equal(f.origin.hits, 0);
      const block = onlyBlock(f.proxy, 'request');
      assert.equal(block?.action_record.target, `http://${f.host}/r/x`);
      assert.equal(block?.action_record.method, 'POST');
    } finally {
      await f.close();
    }
  });
}

async function manyHosts(
  maxUpstreams: number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
) {
  const origin = await startOrigin(handler);
  const proxy = await startEngine({
    pins: {
      'a.example.test': '127.0.0.1',
      'b.example.test': '127.0.0.1',
      'c.example.test': '127.0.0.1',
    },
    limits: { maxUpstreams },
    policy: `version: "1.0"
egress:
  - destination: "*.example.test"
    ports: [${origin.port}]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
`,
  });
  return {
    origin,
    proxy,
    url: (name: string) => `http://${name}.example.test:${origin.port}/r/${name}`,
  };
}

test('upstream pools are bounded: the least recently used idle pool makes room', async () => {
  const { origin, proxy, url } = await manyHosts(2, echo);
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
  try {
    for (const name of ['a', 'b', 'c', 'a']) {
      const response = await request(url(name), { dispatcher: agent });
      assert.equal(response.statusCode, 200, name);
      await response.body.dump();
    }
    const health = await request(`${proxy.proxyUrl}/health`);
    const counters = ((await health.body.json()) as { counters: { upstream_pools: number } })
      .counters;
    assert.equal(counters.upstream_pools, 2);
    assert.equal(origin.hits, 4);
  } finally {
    await agent.close();
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('503 with a limit receipt when every upstream pool is busy', async () => {
  const held: ServerResponse[] = [];
  const { origin, proxy, url } = await manyHosts(1, (_req, res) => void held.push(res));
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
  try {
    const first = request(url('a'), { dispatcher: agent });
    await waitFor(() => held.length === 1, 5_000, 'the first request at the origin');
    const second = await request(url('b'), { dispatcher: agent });
    assert.equal(second.statusCode, 503);
    assert.equal(second.headers['x-pipelock-egress-block'], 'limit');
    assert.match(await second.body.text(), /too many upstreams in use at once \(limit 1\)/);
    held[0]?.end('done');
    await (await first).body.dump();
    await proxy.stop();
    const blocked = decisions(readEvidenceDir(proxy.dir).receipts).filter(
      (r) => r.action_record.verdict === 'block',
    );
    assert.deepEqual(
      blocked.map((r) => [r.action_record.target, r.action_record.layer]),
      [[url('b'), 'limit']],
    );
  } finally {
    for (const res of held) res.destroy();
    await agent.close();
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

/**
 * Sends a request the engine refuses on the raw socket, reads the refusal and keeps its own
 * side open (as a client that never closes would).
 */
async function holdRefusal(
  port: number,
  payload: string,
): Promise<{ socket: Socket; text: string }> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(payload);
  const text = await new Promise<string>((resolve) => {
    let received = '';
    const onData = (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (!received.includes('blocked: ')) return;
      socket.off('data', onData);
      resolve(received);
    };
    socket.on('data', onData);
  });
  return { socket, text };
}

const heldRefusals: Array<[string, (host: string) => string, number]> = [
  ['a refused CONNECT', () => `CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n`, 403],
  [
    'a refused WebSocket handshake',
    (h) =>
      `GET /ws?url=ws://${h}/r/x HTTP/1.1\r\nHost: ${h}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    403,
  ],
  ['a malformed request', () => `GET /\x01 HTTP/1.1\r\n\r\n`, 400],
];

for (const [name, build, status] of heldRefusals) {
  test(
    `${name} whose client keeps its side open is closed soon after, and shutdown seals`,
    {
      timeout: 20_000,
    },
    async () => {
      const f = await fixture();
      try {
        const kept = await holdRefusal(f.proxy.port, build(f.host));
        assert.equal(statusOf(kept.text), status, kept.text);
        const closed = new Promise((resolve) => kept.socket.once('close', resolve));
        // The engine drops its end: the client's next bytes meet a closed socket (a reset),
        // and the write after that fails.
        await new Promise((r) => setTimeout(r, 1_500));
        for (let attempt = 0; attempt < 20 && !kept.socket.destroyed; attempt++) {
          kept.socket.write('more');
          await Promise.race([closed, new Promise((r) => setTimeout(r, 100))]);
        }
        assert.equal(kept.socket.destroyed, true, 'the engine kept the refused socket open');
        const held = await holdRefusal(f.proxy.port, build(f.host));
        const started = Date.now();
        await f.proxy.stop();
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 3_000, `close() took ${elapsed} ms with a refused socket held open`);
        held.socket.destroy();
        assertValid(readEvidenceDir(f.proxy.dir), true);
      } finally {
        await f.close();
      }
    },
  );
}

test('past the client connection limit a new connection is closed unread, with a limit receipt; one closing makes room', async () => {
  const f = await fixture({ limits: { maxClientConnections: 2 } });
  const open: Socket[] = [];
  /** A health check on a new connection, kept alive: what it was answered ('' if closed unread). */
  const askHealth = async (): Promise<{ socket: Socket; answer: string }> => {
    const socket = connect(f.proxy.port, '127.0.0.1');
    open.push(socket);
    socket.on('error', () => undefined);
    socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const answer = await new Promise<string>((resolve) => {
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
      socket.once('close', () => resolve(''));
    });
    return { socket, answer };
  };
  try {
    const first = await askHealth();
    const second = await askHealth();
    assert.match(first.answer, /^HTTP\/1\.1 200 /);
    assert.match(second.answer, /^HTTP\/1\.1 200 /);
    const third = await askHealth();
    assert.equal(third.answer, '', 'closed before anything was read or answered');
    first.socket.destroy();
    let closedUnread = 1;
    let next = await askHealth();
    // The engine sees the first close a moment later: until then a new one is closed too.
    for (let tries = 0; next.answer === '' && tries < 100; tries++) {
      closedUnread++;
      await delay(20);
      next = await askHealth();
    }
    assert.match(next.answer, /^HTTP\/1\.1 200 /);
    await f.proxy.stop();
    const records = decisions(readEvidenceDir(f.proxy.dir).receipts).map((r) => r.action_record);
    assert.equal(records.length, closedUnread, 'one receipt per connection closed unread');
    for (const record of records) {
      assert.equal(record.verdict, 'block');
      assert.equal(record.layer, 'limit');
      assert.equal(record.target, 'pipelock://request/unparsed');
      assert.match(String(record.pattern), /too many client connections \(limit 2\)/);
    }
  } finally {
    for (const socket of open) socket.destroy();
    await f.close();
  }
});
