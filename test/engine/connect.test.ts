import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import {
  assertNoViolations,
  assertValid,
  cleanup,
  curl,
  makePki,
  openTunnel,
  parseCurlResponse,
  rawExchange,
  readEvidenceDir,
  startEngine,
  startHttpsOrigin,
  statusOf,
  waitFor,
  type EngineSetup,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { Receipt } from '../../src/receipts/index.js';
import { captureHello, echExtensionBody, serverNameList, withExtension } from './tls-hello.js';

const pki = makePki(['secure.example.test', 'other.example.test']);
after(() => cleanup(pki.dir));

const DOWNLOAD = randomBytes(1024 * 1024);

interface Fixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  /** TCP connections the origin accepted. */
  connections: number;
  close(): Promise<void>;
}

async function fixture(
  setup: Omit<EngineSetup, 'policy'> = {},
  policy?: (port: number) => string,
): Promise<Fixture> {
  const origin = await startHttpsOrigin((req, res) => {
    if (req.url === '/big') res.end(DOWNLOAD);
    else res.end(`tls ok ${req.url}`);
  }, pki);
  const proxy = await startEngine({
    pins: {
      'secure.example.test': '127.0.0.1',
      'other.example.test': '127.0.0.1',
    },
    upstreamCa: [pki.caCert],
    ...setup,
    policy: (policy ?? defaultPolicy)(origin.port),
  });
  const f: Fixture = {
    origin,
    proxy,
    connections: 0,
    async close() {
      await proxy.stop();
      await origin.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
  origin.server.on('connection', () => f.connections++);
  return f;
}

const defaultPolicy = (port: number) => `version: "1.0"
egress:
  - destination: "secure.example.test"
    ports: [${port}]
  - destination: "other.example.test"
    ports: [${port}]
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`;

/** Runs a TLS client inside an open tunnel; resolves when the tunnel closes or TLS succeeds. */
function tlsThrough(
  socket: Socket,
  options: { servername?: string; host?: string },
): Promise<'secure' | 'closed'> {
  return new Promise((resolve) => {
    const tls = tlsConnect({ socket, ca: pki.caCert, ...options });
    tls.on('secureConnect', () => {
      tls.destroy();
      resolve('secure');
    });
    tls.on('error', () => resolve('closed'));
    tls.on('close', () => resolve('closed'));
  });
}

function connectReceipts(proxy: RunningEngine): Receipt[] {
  const evidence = readEvidenceDir(proxy.dir);
  assertValid(evidence, true);
  return evidence.receipts.filter((r) => r.action_record.transport === 'connect');
}

test('an allowed CONNECT tunnel carries curl TLS to an https origin, with decision and outcome receipts', async () => {
  const f = await fixture();
  try {
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '--cacert',
      pki.caFile,
      `https://secure.example.test:${f.origin.port}/hello`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), 'tls ok /hello');
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 0, 5_000, 'the tunnel to close');
    await f.proxy.stop();
    const records = connectReceipts(f.proxy).map((r) => r.action_record);
    assert.equal(records.length, 2);
    const [decision, outcome] = records;
    assert.equal(decision?.verdict, 'allow');
    assert.equal(decision?.method, 'CONNECT');
    assert.equal(decision?.target, `secure.example.test:${f.origin.port}`);
    assert.equal(decision?.decision_phase, 'intent');
    assert.equal(outcome?.decision_phase, 'outcome');
    assert.equal(outcome?.layer, 'outcome');
    assert.equal(outcome?.action_id, decision?.action_id);
    const bytes = /bytes=(\d+) .*sent=(\d+)/.exec(outcome?.pattern ?? '');
    assert.ok(Number(bytes?.[1]) > 500 && Number(bytes?.[2]) > 200, outcome?.pattern);
    assertNoViolations();
  } finally {
    await f.close();
  }
});

test('Node (undici ProxyAgent over CONNECT) downloads 1 MiB over TLS intact', async () => {
  const f = await fixture();
  const agent = new ProxyAgent({ uri: f.proxy.proxyUrl, requestTls: { ca: pki.caCert } });
  try {
    const response = await request(`https://secure.example.test:${f.origin.port}/big`, {
      dispatcher: agent,
    });
    assert.equal(response.statusCode, 200);
    const body = Buffer.from(await response.body.arrayBuffer());
    assert.ok(body.equals(DOWNLOAD));
  } finally {
    await agent.close();
    await f.close();
  }
});

async function expectSniBlock(
  f: Fixture,
  send: (socket: Socket) => Promise<unknown>,
  reason: RegExp,
  target?: string,
): Promise<void> {
  const { socket, status } = await openTunnel(
    f.proxy.port,
    target ?? `secure.example.test:${f.origin.port}`,
  );
  assert.equal(status, 200);
  await send(socket);
  await waitFor(() => socket.destroyed || socket.readableEnded, 5_000, 'the tunnel to close');
  socket.destroy();
  await f.proxy.stop();
  assert.equal(f.connections, 0, 'the engine dialled the origin');
  assertSniBlockRecorded(f.proxy, reason);
}

/** The tunnel's receipts: admitted, then blocked at layer `sni` for `reason`. */
function assertSniBlockRecorded(proxy: RunningEngine, reason: RegExp): void {
  const records = connectReceipts(proxy).map((r) => r.action_record);
  assert.deepEqual(
    records.map((r) => [r.verdict, r.layer ?? '']),
    [
      ['allow', ''],
      ['block', 'sni'],
    ],
  );
  assert.match(records[1]?.pattern ?? '', reason);
}

test('an SNI that differs from the CONNECT host closes the tunnel with a block receipt', async () => {
  const f = await fixture();
  try {
    await expectSniBlock(
      f,
      async (socket) =>
        assert.equal(await tlsThrough(socket, { servername: 'other.example.test' }), 'closed'),
      /SNI other\.example\.test does not match the CONNECT host secure\.example\.test/,
    );
  } finally {
    await f.close();
  }
});

test('a ClientHello without SNI for a named host closes the tunnel with a block receipt', async () => {
  const f = await fixture();
  try {
    await expectSniBlock(
      f,
      async (socket) => assert.equal(await tlsThrough(socket, { host: '127.0.0.1' }), 'closed'),
      /no SNI; expected secure\.example\.test/,
    );
  } finally {
    await f.close();
  }
});

test('a server_name list naming the CONNECT host after an entry of another type closes the tunnel', async () => {
  const f = await fixture();
  try {
    // A hello to an address carries no SNI; the edited one then has just this list.
    const hello = withExtension(
      await captureHello({ host: '127.0.0.1' }),
      0x0000,
      serverNameList([
        [1, 'evil.example.test'],
        [0, 'secure.example.test'],
      ]),
    );
    await expectSniBlock(
      f,
      async (socket) => void socket.write(hello),
      /^malformed ClientHello: the server_name entry has type 1, not host_name \(0\)$/,
    );
  } finally {
    await f.close();
  }
});

test('a payload in the tunnel that is neither TLS nor HTTP closes it with a block receipt', async () => {
  const f = await fixture();
  try {
    await expectSniBlock(
      f,
      async (socket) => void socket.write('SSH-2.0-x\r\n'),
      /^the tunnel payload is neither TLS nor an HTTP request; only TLS and plain HTTP requests may be tunnelled$/,
    );
  } finally {
    await f.close();
  }
});

test('a mismatched ClientHello sent with the CONNECT request (head bytes) is caught too', async () => {
  const f = await fixture();
  try {
    // Capture a real hello for another name, then send it in the same write as CONNECT.
    const captured = await captureHello({ servername: 'other.example.test' });
    const { socket, status } = await openTunnel(
      f.proxy.port,
      `secure.example.test:${f.origin.port}`,
      captured,
    );
    assert.equal(status, 200);
    await waitFor(() => socket.destroyed || socket.readableEnded, 5_000, 'the tunnel to close');
    socket.destroy();
    await f.proxy.stop();
    assert.equal(f.connections, 0);
    const records = connectReceipts(f.proxy).map((r) => r.action_record);
    assert.equal(records[1]?.layer, 'sni');
    assert.match(records[1]?.pattern ?? '', /SNI other\.example\.test does not match/);
  } finally {
    await f.close();
  }
});

for (const [passthrough, codepoint] of [
  [false, 0xfe0d],
  [true, 0xfe0d],
  [false, 0xfe0a], // draft-ietf-tls-esni-10, which a probe got through
] as const) {
  test(`a tunnelled ClientHello with Encrypted Client Hello (0x${codepoint.toString(16)}) is closed with a block receipt: its SNI is only a cover${passthrough ? ' (tls: passthrough)' : ''}`, async () => {
    const f = await fixture({}, (port) =>
      passthrough
        ? defaultPolicy(port).replace(`ports: [${port}]`, `ports: [${port}]\n    tls: passthrough`)
        : defaultPolicy(port),
    );
    try {
      const hello = withExtension(
        await captureHello({ servername: 'secure.example.test' }),
        codepoint,
        echExtensionBody(),
      );
      await expectSniBlock(
        f,
        async (socket) => void socket.write(hello),
        passthrough
          ? /hides the server name a tunnel is checked by; turn ECH off in the client \(Chromium: --disable-features=EncryptedClientHello\)$/
          : /the ClientHello uses Encrypted Client Hello, which hides the server name a tunnel is checked by; turn ECH off in the client \(Chromium: --disable-features=EncryptedClientHello\) or have egress\[0\] intercepted \(methods, paths or scan\)$/,
      );
    } finally {
      await f.close();
    }
  });
}

test('an intercepted destination takes a ClientHello with ECH: the engine answers it with its own ServerHello', async () => {
  const f = await fixture({}, (port) =>
    defaultPolicy(port).replace(
      `destination: "secure.example.test"\n    ports: [${port}]`,
      `destination: "secure.example.test"\n    ports: [${port}]\n    methods: ["GET"]`,
    ),
  );
  try {
    const hello = withExtension(
      await captureHello({ servername: 'secure.example.test' }),
      0xfe0d,
      echExtensionBody(),
    );
    const { socket, status } = await openTunnel(
      f.proxy.port,
      `secure.example.test:${f.origin.port}`,
    );
    assert.equal(status, 200);
    const answer = new Promise<Buffer>((resolve) => {
      socket.once('data', resolve);
      socket.once('close', () => resolve(Buffer.alloc(0)));
    });
    socket.write(hello);
    const first = await answer;
    socket.destroy();
    assert.deepEqual([first[0], first[5]], [0x16, 0x02], 'a TLS record holding a ServerHello');
    await f.proxy.stop();
    const records = connectReceipts(f.proxy).map((r) => r.action_record);
    assert.equal(
      records.some((r) => r.layer === 'sni'),
      false,
    );
  } finally {
    await f.close();
  }
});

for (const [what, target, layer] of [
  ['a disallowed destination', 'blocked.example.test:443', 'destination'],
  ['a disallowed port', 'secure.example.test:1', 'port'],
  ['a URL instead of host:port', 'https://secure.example.test/', 'request'],
] as const) {
  test(`CONNECT to ${what} is refused before any byte is tunnelled`, async () => {
    const f = await fixture();
    try {
      const { text } = await rawExchange(
        f.proxy.port,
        `CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01`,
      );
      assert.equal(statusOf(text), layer === 'request' ? 400 : 403, text);
      assert.match(text, new RegExp(`X-Pipelock-Egress-Block: ${layer}`));
      assert.match(text, /Content-Type: text\/plain/);
      await f.proxy.stop();
      assert.equal(f.connections, 0);
      const records = connectReceipts(f.proxy).map((r) => r.action_record);
      assert.deepEqual(
        records.map((r) => [r.verdict, r.layer]),
        [['block', layer]],
      );
    } finally {
      await f.close();
    }
  });
}

test('CONNECT to a name resolving to an internal address is refused by the SSRF guard', async () => {
  const f = await fixture(
    { pins: { 'secure.example.test': '169.254.169.254' } },
    (port) =>
      `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${port}]\ndefault_deny: true\n`,
  );
  try {
    const { text } = await rawExchange(
      f.proxy.port,
      `CONNECT secure.example.test:${f.origin.port} HTTP/1.1\r\n\r\n`,
    );
    assert.equal(statusOf(text), 403, text);
    assert.match(text, /X-Pipelock-Egress-Block: ssrf/);
    assertNoViolations();
  } finally {
    await f.close();
  }
});

test('beyond the active tunnel limit a CONNECT is answered 503 with a limit receipt', async () => {
  const f = await fixture({ limits: { maxActiveTunnels: 1 } });
  try {
    const first = await openTunnel(f.proxy.port, `secure.example.test:${f.origin.port}`);
    assert.equal(first.status, 200);
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 1, 2_000, 'one active tunnel');
    const { text } = await rawExchange(
      f.proxy.port,
      `CONNECT secure.example.test:${f.origin.port} HTTP/1.1\r\n\r\n`,
    );
    assert.equal(statusOf(text), 503, text);
    assert.match(text, /X-Pipelock-Egress-Block: limit/);
    assert.match(text, /too many active tunnels and WebSockets \(limit 1\)/);
    // The first tunnel still works.
    assert.equal(await tlsThrough(first.socket, { servername: 'secure.example.test' }), 'secure');
    await f.proxy.stop();
    const blocks = connectReceipts(f.proxy).filter((r) => r.action_record.verdict === 'block');
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0]?.action_record.layer, 'limit');
  } finally {
    await f.close();
  }
});

test('a tunnel that sends no ClientHello in time is closed with a block receipt', async () => {
  const f = await fixture({ limits: { clientHelloTimeoutMs: 200 } });
  try {
    await expectSniBlock(
      f,
      () => new Promise((r) => setTimeout(r, 50)),
      /no ClientHello or HTTP request within 200 ms/,
    );
  } finally {
    await f.close();
  }
});

test('CONNECT to an IP literal named by a rule tunnels without SNI', async () => {
  const f = await fixture();
  try {
    const { socket, status } = await openTunnel(f.proxy.port, `127.0.0.1:${f.origin.port}`);
    assert.equal(status, 200);
    assert.equal(await tlsThrough(socket, { host: '127.0.0.1' }), 'secure');
    assert.equal(f.connections, 1);
  } finally {
    await f.close();
  }
});

interface RawFixture {
  readonly proxy: RunningEngine;
  readonly port: number;
  /** What the upstream has received so far. */
  received(): Buffer;
  close(): Promise<void>;
}

/** An engine tunnelling to a plain TCP upstream on loopback that keeps what it receives. */
async function rawFixture(): Promise<RawFixture> {
  const { createServer } = await import('node:net');
  const received: Buffer[] = [];
  const sockets: Socket[] = [];
  const raw = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const port = (raw.address() as { port: number }).port;
  const proxy = await startEngine({
    pins: { 'secure.example.test': '127.0.0.1' },
    policy: `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${port}]\n  - destination: "127.0.0.1"\n    ports: [${port}]\ndefault_deny: true\n`,
  });
  return {
    proxy,
    port,
    received: () => Buffer.concat(received),
    async close() {
      for (const socket of sockets) socket.destroy();
      await proxy.stop();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
      cleanup(join(proxy.dir, '..'));
    },
  };
}

/** A TLS application-data record. */
function applicationData(content: string): Buffer {
  return Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0, content.length]), Buffer.from(content)]);
}

test('bytes sent right behind a ClientHello that arrived with the CONNECT request are relayed, not lost', async () => {
  const f = await rawFixture();
  try {
    const hello = await captureHello({ servername: 'secure.example.test' });
    const { socket, status } = await openTunnel(
      f.proxy.port,
      `secure.example.test:${f.port}`,
      hello,
    );
    assert.equal(status, 200);
    const early = applicationData('EARLY-DATA');
    socket.write(early);
    const expected = Buffer.concat([hello, early]);
    await waitFor(() => f.received().length >= expected.length, 3_000, 'the relayed bytes');
    assert.ok(f.received().equals(expected), 'the upstream got the hello and the bytes behind it');
    socket.destroy();
  } finally {
    await f.close();
  }
});

/** Sends a hello and then `after` into a tunnel to the raw upstream: the tunnel must be cut. */
async function expectCutAfterHello(after: Buffer, reason: RegExp): Promise<void> {
  const f = await rawFixture();
  try {
    const hello = await captureHello({ servername: 'secure.example.test' });
    const { socket, status } = await openTunnel(f.proxy.port, `secure.example.test:${f.port}`);
    assert.equal(status, 200);
    socket.write(hello);
    await waitFor(() => f.received().length >= hello.length, 3_000, 'the relayed hello');
    socket.write(after);
    await waitFor(() => socket.destroyed || socket.readableEnded, 5_000, 'the tunnel to be cut');
    socket.destroy();
    await f.proxy.stop();
    assert.ok(f.received().equals(hello), 'the upstream got the first hello and nothing after it');
    assertSniBlockRecorded(f.proxy, reason);
  } finally {
    await f.close();
  }
}

test('plaintext after the ClientHello of a tunnel cuts it with a block receipt; the origin never gets it', async () => {
  await expectCutAfterHello(
    Buffer.from('GET / HTTP/1.1\r\nHost: secure.example.test\r\n\r\n'),
    /^the client sent something other than a TLS record \(content type 71\); only TLS may be tunnelled; the tunnel was closed after \d+ bytes sent and 0 received$/,
  );
});

test('a second plaintext ClientHello naming another host cuts the tunnel with a block receipt', async () => {
  const changeCipherSpec = Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
  const other = await captureHello({ servername: 'other.example.test' });
  await expectCutAfterHello(
    Buffer.concat([changeCipherSpec, other]),
    /^a later ClientHello: SNI other\.example\.test does not match the CONNECT host secure\.example\.test; the tunnel/,
  );
});

test('a TLS 1.3 handshake with a HelloRetryRequest (a second ClientHello) passes through a tunnel', async () => {
  const { createServer: createTlsServer } = await import('node:tls');
  // The client's one key share is X25519: an origin taking only P-384 asks for another.
  const origin = createTlsServer(
    { key: pki.serverKey, cert: pki.serverCert, ecdhCurve: 'P-384' },
    (socket) => socket.end('over TLS 1.3 after a retry'),
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const port = (origin.address() as { port: number }).port;
  const proxy = await startEngine({
    pins: { 'secure.example.test': '127.0.0.1' },
    policy: `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${port}]\n  - destination: "127.0.0.1"\n    ports: [${port}]\ndefault_deny: true\n`,
  });
  try {
    const { socket, status } = await openTunnel(proxy.port, `secure.example.test:${port}`);
    assert.equal(status, 200);
    const tls = tlsConnect({ socket, servername: 'secure.example.test', ca: pki.caCert });
    let answer = '';
    tls.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await once(tls, 'end');
    assert.deepEqual(
      tls.getEphemeralKeyInfo(),
      { type: 'ECDH', name: 'secp384r1', size: 384 },
      'the retry took place',
    );
    tls.destroy();
    assert.equal(answer, 'over TLS 1.3 after a retry');
    await proxy.stop();
    const records = connectReceipts(proxy).map((r) => r.action_record);
    assert.deepEqual(
      records.map((r) => [r.verdict, r.layer ?? '']),
      [
        ['allow', ''],
        ['allow', 'outcome'],
      ],
    );
  } finally {
    await proxy.stop();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
    cleanup(join(proxy.dir, '..'));
  }
});

test('closing the engine with a tunnel open still records its outcome before the seal', async () => {
  const f = await fixture();
  const errors: Error[] = [];
  try {
    const { socket, status } = await openTunnel(
      f.proxy.port,
      `secure.example.test:${f.origin.port}`,
    );
    assert.equal(status, 200);
    const tls = tlsConnect({ socket, ca: pki.caCert, servername: 'secure.example.test' });
    tls.on('error', (e) => void errors.push(e));
    await new Promise<void>((resolve) => tls.once('secureConnect', () => resolve()));
    assert.equal(f.proxy.engine.counters.activeTunnels, 1);
    await f.proxy.stop();
    const records = connectReceipts(f.proxy).map((r) => r.action_record);
    assert.deepEqual(
      records.map((r) => r.decision_phase),
      ['intent', 'outcome'],
    );
    assert.equal(f.proxy.engine.counters.evidenceErrors, 0);
  } finally {
    await f.close();
  }
});

test('a tunnel whose upstream refuses the connection ends with an outcome receipt naming the error', async () => {
  const { createServer } = await import('node:net');
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const proxy = await startEngine({
    pins: { 'secure.example.test': '127.0.0.1' },
    policy: `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${deadPort}]\n  - destination: "127.0.0.1"\n    ports: [${deadPort}]\ndefault_deny: true\n`,
  });
  try {
    const { socket, status } = await openTunnel(proxy.port, `secure.example.test:${deadPort}`);
    assert.equal(status, 200);
    assert.equal(await tlsThrough(socket, { servername: 'secure.example.test' }), 'closed');
    await waitFor(() => proxy.engine.counters.activeTunnels === 0, 5_000, 'the tunnel to end');
    await proxy.stop();
    const records = connectReceipts(proxy).map((r) => r.action_record);
    assert.equal(records.length, 2);
    assert.equal(records[1]?.decision_phase, 'outcome');
    assert.match(records[1]?.pattern ?? '', /reason=upstream_error ECONNREFUSED/);
  } finally {
    await proxy.stop();
    cleanup(join(proxy.dir, '..'));
  }
});

test('CONNECT to an IP literal carrying a name in SNI is closed with a block receipt', async () => {
  const f = await fixture();
  try {
    await expectSniBlock(
      f,
      async (socket) =>
        assert.equal(await tlsThrough(socket, { servername: 'secure.example.test' }), 'closed'),
      /SNI secure\.example\.test does not match the CONNECT host 127\.0\.0\.1/,
      `127.0.0.1:${f.origin.port}`,
    );
  } finally {
    await f.close();
  }
});

for (const spelling of ['0x7f.0.0.1', '127.1', '2130706433']) {
  test(`CONNECT to an IP literal with the address spelled ${spelling} in SNI is closed with a block receipt`, async () => {
    const f = await fixture();
    try {
      await expectSniBlock(
        f,
        async (socket) =>
          assert.equal(await tlsThrough(socket, { servername: spelling }), 'closed'),
        new RegExp(
          `^SNI ${spelling.replace(/\./g, '\\.')} does not match the CONNECT host 127\\.0\\.0\\.1$`,
        ),
        `127.0.0.1:${f.origin.port}`,
      );
    } finally {
      await f.close();
    }
  });
}

test('an idle tunnel is closed after the idle limit with an outcome receipt', async () => {
  const { createServer } = await import('node:net');
  const accepted: Socket[] = [];
  const raw = createServer((socket) => void accepted.push(socket.on('data', () => undefined)));
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const rawPort = (raw.address() as { port: number }).port;
  const proxy = await startEngine({
    pins: { 'secure.example.test': '127.0.0.1' },
    limits: { tunnelIdleMs: 300 },
    policy: `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${rawPort}]\n  - destination: "127.0.0.1"\n    ports: [${rawPort}]\ndefault_deny: true\n`,
  });
  try {
    const hello = await captureHello({ servername: 'secure.example.test' });
    const { socket, status } = await openTunnel(
      proxy.port,
      `secure.example.test:${rawPort}`,
      hello,
    );
    assert.equal(status, 200);
    const started = Date.now();
    await waitFor(
      () => socket.destroyed || socket.readableEnded,
      5_000,
      'the idle tunnel to close',
    );
    assert.ok(Date.now() - started >= 250, 'closed before the idle limit');
    socket.destroy();
    await waitFor(() => proxy.engine.counters.activeTunnels === 0, 2_000, 'the tunnel to end');
    await proxy.stop();
    const records = connectReceipts(proxy).map((r) => r.action_record);
    assert.equal(records[1]?.decision_phase, 'outcome');
    assert.match(records[1]?.pattern ?? '', /reason=idle_timeout/);
  } finally {
    for (const s of accepted) s.destroy();
    await proxy.stop();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
    cleanup(join(proxy.dir, '..'));
  }
});

for (const literal of ['2130706433', '0x7f000001', '0177.0.0.1', '[::1]', '[::ffff:127.0.0.1]']) {
  test(`CONNECT to the IP literal ${literal} is refused by the SSRF guard unless named`, async () => {
    const f = await fixture(
      {},
      () =>
        `version: "1.0"\negress:\n  - destination: "secure.example.test"\ndefault_deny: false\n`,
    );
    try {
      const { text } = await rawExchange(
        f.proxy.port,
        `CONNECT ${literal}:${f.origin.port} HTTP/1.1\r\n\r\n`,
      );
      assert.equal(statusOf(text), 403, text);
      assert.match(text, /X-Pipelock-Egress-Block: ssrf/);
      await f.proxy.stop();
      assert.equal(f.connections, 0);
      assertNoViolations();
    } finally {
      await f.close();
    }
  });
}

test('a client that hangs up right after CONNECT frees its tunnel slot at once', async () => {
  const f = await fixture({ limits: { clientHelloTimeoutMs: 10_000 } });
  try {
    for (let i = 0; i < 5; i++) {
      const socket = connect({ host: '127.0.0.1', port: f.proxy.port });
      await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
      socket.end(`CONNECT secure.example.test:${f.origin.port} HTTP/1.1\r\n\r\n`);
      socket.destroy();
    }
    await waitFor(
      () => f.proxy.engine.counters.activeTunnels === 0,
      2_000,
      'the slots to be freed',
    );
    assert.equal(f.connections, 0);
  } finally {
    await f.close();
  }
});

test('when the origin closes a tunnel first, the engine still sees the client close its side', async () => {
  const f = await fixture();
  const engineSide = clientSockets(f.proxy);
  try {
    const { socket, status } = await openTunnel(
      f.proxy.port,
      `secure.example.test:${f.origin.port}`,
    );
    assert.equal(status, 200);
    const tls = tlsConnect({ socket, servername: 'secure.example.test', ca: pki.caCert });
    await once(tls, 'secureConnect');
    let answer = '';
    tls.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    tls.write('GET /x HTTP/1.1\r\nHost: secure.example.test\r\nConnection: close\r\n\r\n');
    await once(tls, 'end');
    assert.match(answer, /^HTTP\/1\.1 200 [\s\S]*tls ok \/x$/);
    tls.destroy();
    await engineSide.closed();
  } finally {
    engineSide.destroy();
    await f.close();
  }
});

/**
 * The engine's own sockets to its clients: one it never closes would hold up its shutdown.
 * `closed` waits until every one is.
 */
function clientSockets(proxy: RunningEngine): { closed(): Promise<void>; destroy(): void } {
  const sockets: Socket[] = [];
  const server = (proxy.engine as unknown as { server: Server }).server;
  server.on('connection', (socket: Socket) => sockets.push(socket));
  return {
    closed: () =>
      waitFor(
        () => sockets.length > 0 && sockets.every((s) => s.destroyed),
        3_000,
        'the engine to close its side',
      ),
    destroy: () => sockets.forEach((socket) => socket.destroy()),
  };
}

test('an origin that closes first while the client goes on sending: the client is still read to its close', async () => {
  const { createServer } = await import('node:net');
  const origin = createServer((socket) => socket.once('data', () => socket.end()));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const port = (origin.address() as { port: number }).port;
  const proxy = await startEngine({
    pins: { 'secure.example.test': '127.0.0.1' },
    policy: `version: "1.0"\negress:\n  - destination: "secure.example.test"\n    ports: [${port}]\n  - destination: "127.0.0.1"\n    ports: [${port}]\ndefault_deny: true\n`,
  });
  const engineSide = clientSockets(proxy);
  try {
    const client = connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    await once(client, 'connect');
    client.write(`CONNECT secure.example.test:${port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    client.write(await captureHello({ servername: 'secure.example.test' }));
    client.resume();
    await once(client, 'end'); // the origin's close, passed on
    // More than the relay buffers once nothing takes it any more.
    const record = applicationData('x'.repeat(250));
    for (let i = 0; i < 1_000; i++) client.write(record);
    client.end();
    await engineSide.closed();
  } finally {
    engineSide.destroy();
    await proxy.stop();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
    cleanup(join(proxy.dir, '..'));
  }
});
