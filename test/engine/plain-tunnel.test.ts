import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  assertNoViolations,
  cleanup,
  curl,
  curlTrustingRunCa,
  echo,
  ReceiptWitness,
  fetchInAgentEnvironment,
  nodeReadsEnvProxy,
  openTunnel,
  parseCurlResponse,
  rawExchange,
  sealedRecords,
  startEngine,
  startOrigin,
  statusOf,
  waitFor,
  type EngineSetup,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { ActionRecord } from '../../src/receipts/index.js';

// Node's own fetch (NODE_USE_ENV_PROXY) and curl --proxytunnel send an http:// URL's requests
// in the clear inside a CONNECT tunnel: each is judged on its own, as inside intercepted TLS.

const NAMES = [
  'plain.example.test',
  'scan.example.test',
  'open.example.test',
  'prefix.example.test',
];
const GITHUB_TOKEN = `ghp_${'Zq3Rt7Yp1W'.repeat(3)}k9Lm2N`;
const AGENT_TOKEN = 'Qv8sLw2Kd7Rt5Yb1Nx4M';

after(assertNoViolations);

const policy = (port: number) => `version: "1.0"
egress:
  - destination: "plain.example.test"
    ports: [${port}]
    methods: ["GET", "HEAD"]
    paths: ["/repos/"]
  - destination: "scan.example.test"
    ports: [${port}]
    scan: true
  # Relayed untouched inside TLS; in the clear its requests are judged all the same.
  - destination: "open.example.test"
    ports: [${port}]
    tls: passthrough
  # Plain HTTP under this prefix only: its tunnel may carry nothing else.
  - destination: "http://prefix.example.test:${port}/api/"
  # The origin listens on loopback: naming it lets the SSRF guard pass the pinned names.
  - destination: "127.0.0.1"
    ports: [${port}]
secrets:
  - env: AGENT_TOKEN
    allow: ["scan.example.test"]
websocket:
  enabled: true
default_deny: true
`;

interface Fixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  /** Messages the origin's WebSocket endpoint received. */
  readonly messages: string[];
  /** Request tokens (`/r/<token>`) the origin got before their receipt was written. */
  readonly early: string[];
  close(): Promise<void>;
}

/** An HTTP origin (echo, and a WebSocket echo) on loopback and an engine, names pinned there. */
async function fixture(setup: Omit<EngineSetup, 'policy'> = {}): Promise<Fixture> {
  const witness = new ReceiptWitness();
  const origin = await startOrigin((req, res) => {
    witness.saw(req.url);
    // Answered later than the idle limit a test sets.
    if (req.url?.startsWith('/repos/slow/')) setTimeout(() => echo(req, res), 600);
    else echo(req, res);
  });
  const messages: string[] = [];
  const sockets = new WebSocketServer({ server: origin.server });
  sockets.on('connection', (socket) =>
    socket.on('message', (data: Buffer) => {
      messages.push(data.toString());
      socket.send(data.toString());
    }),
  );
  const proxy = await startEngine({
    pins: Object.fromEntries(NAMES.map((name) => [name, '127.0.0.1'])),
    secretValues: { AGENT_TOKEN },
    ...setup,
    policy: policy(origin.port),
  });
  witness.follow(proxy.dir);
  return {
    origin,
    proxy,
    messages,
    early: witness.early,
    async close() {
      await proxy.stop();
      sockets.close();
      await origin.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
}

/** curl through the engine with --proxytunnel: an http:// URL goes inside a CONNECT tunnel. */
const curlTunnelled = (f: Fixture, args: readonly string[]) =>
  curl(['--proxytunnel', '--proxy', f.proxy.proxyUrl, ...args]);

const records = (f: Fixture): Promise<ActionRecord[]> => sealedRecords(f.proxy);

const summary = (rs: readonly ActionRecord[]) =>
  rs.map((r) => [r.transport, r.decision_phase ?? '', r.verdict, r.layer ?? '', r.method]);

/** Opens a tunnel, sends `payload` (in the CONNECT's own write), and reads until it closes. */
async function throughTunnel(f: Fixture, target: string, payload: string): Promise<string> {
  const { socket, status, text } = await openTunnel(f.proxy.port, target, Buffer.from(payload));
  assert.equal(status, 200);
  let answer = text.slice(text.indexOf('\r\n\r\n') + 4);
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  await waitFor(() => socket.destroyed || socket.readableEnded, 5_000, 'the tunnel to close');
  socket.destroy();
  return answer;
}

/** The status of the next answer on the socket (0 when it closes first). */
function nextStatus(socket: Socket): Promise<number> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(statusOf(chunk.toString('latin1'))));
    socket.once('close', () => resolve(0));
  });
}

/** The status lines of the answers in a byte stream, in order. */
const statuses = (answers: string) =>
  [...answers.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((match) => Number(match[1]));

test('curl --proxytunnel: an allowed GET to an http:// URL is judged on its own inside the tunnel, its receipt written before it is sent', async () => {
  const f = await fixture();
  try {
    const url = `http://plain.example.test:${f.origin.port}/repos/r/tunnelled-1?x=1`;
    const result = await curlTunnelled(f, ['-i', url]);
    assert.equal(result.code, 0, result.stderr);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as {
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(seen.url, '/repos/r/tunnelled-1?x=1');
    assert.equal(seen.headers.host, `plain.example.test:${f.origin.port}`);
    const all = await records(f);
    assert.deepEqual(summary(all), [
      ['connect', 'intent', 'allow', '', 'CONNECT'],
      ['intercept', 'intent', 'allow', '', 'GET'],
      ['connect', 'outcome', 'allow', 'outcome', 'CONNECT'],
    ]);
    assert.equal(all[1]?.target, url);
    assert.match(all[2]?.pattern ?? '', /^status=200 intercepted_requests=1 reason=complete$/);
    assert.deepEqual(f.early, []);
  } finally {
    await f.close();
  }
});

for (const [what, args, layer] of [
  ['a path outside paths', [], 'path'],
  ['a Host header naming another host', ['-H', 'Host: open.example.test'], 'host'],
  ['a method the rule does not allow', ['-X', 'DELETE'], 'method'],
] as const) {
  test(`curl --proxytunnel: ${what} is refused 403 with a receipt, nothing reaches the origin`, async () => {
    const f = await fixture();
    try {
      const path = layer === 'path' ? '/admin' : '/repos/x';
      const result = await curlTunnelled(f, [
        '-i',
        ...args,
        `http://plain.example.test:${f.origin.port}${path}`,
      ]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, 403, result.stdout.toString());
      assert.equal(response.headers['x-pipelock-egress-block'], layer);
      assert.equal(f.origin.hits, 0);
      const inner = (await records(f)).filter((r) => r.transport === 'intercept');
      assert.deepEqual(
        inner.map((r) => [r.verdict, r.layer, r.target]),
        [['block', layer, `http://plain.example.test:${f.origin.port}${path}`]],
      );
    } finally {
      await f.close();
    }
  });
}

test('curl --proxytunnel: several requests on one tunnel are judged one by one', async () => {
  const f = await fixture();
  try {
    const base = `http://plain.example.test:${f.origin.port}`;
    const result = await curlTunnelled(f, [
      '-w',
      '%{http_code}\\n',
      ...['/repos/a', '/elsewhere', '/repos/b'].flatMap((path) => ['-o', '/dev/null', base + path]),
    ]);
    assert.equal(result.stdout.toString(), '200\n403\n200\n');
    assert.equal(f.origin.hits, 2);
    const all = await records(f);
    assert.deepEqual(
      all
        .filter((r) => r.transport === 'intercept')
        .map((r) => [r.verdict, r.layer ?? '', new URL(r.target).pathname]),
      [
        ['allow', '', '/repos/a'],
        ['block', 'path', '/elsewhere'],
        ['allow', '', '/repos/b'],
      ],
    );
    const connects = all.filter((r) => r.transport === 'connect');
    assert.deepEqual(
      connects.map((r) => r.decision_phase),
      ['intent', 'outcome'],
    );
    assert.match(connects[1]?.pattern ?? '', /intercepted_requests=3/);
  } finally {
    await f.close();
  }
});

test('curl --proxytunnel: a token in a header or the body to a scan: true destination is refused 403 (dlp)', async () => {
  const f = await fixture();
  try {
    const url = `http://scan.example.test:${f.origin.port}/upload`;
    for (const args of [
      ['-H', `Authorization: token ${GITHUB_TOKEN}`],
      ['--data', `key=${GITHUB_TOKEN}`],
    ]) {
      const result = await curlTunnelled(f, ['-i', ...args, url]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, 403, result.stdout.toString());
      assert.equal(response.headers['x-pipelock-egress-block'], 'dlp');
    }
    assert.equal(f.origin.hits, 0);
    const all = await records(f);
    assert.deepEqual(
      all.filter((r) => r.transport === 'intercept').map((r) => [r.method, r.verdict, r.layer]),
      [
        ['GET', 'block', 'dlp'],
        ['POST', 'block', 'dlp'],
      ],
    );
    for (const record of all)
      assert.ok(!`${record.target} ${record.pattern ?? ''}`.includes(GITHUB_TOKEN));
  } finally {
    await f.close();
  }
});

test('a tls: passthrough destination in the clear is judged request by request: a bound secret in a header is refused', async () => {
  const f = await fixture();
  try {
    const url = `http://open.example.test:${f.origin.port}/anything`;
    const clean = await curlTunnelled(f, ['-s', '-o', '/dev/null', '-w', '%{http_code}', url]);
    assert.equal(clean.stdout.toString(), '200');
    const leak = await curlTunnelled(f, ['-i', '-H', `X-Token: ${AGENT_TOKEN}`, url]);
    const response = parseCurlResponse(leak.stdout);
    assert.equal(response.status, 403, leak.stdout.toString());
    assert.equal(response.headers['x-pipelock-egress-block'], 'dlp');
    assert.equal(f.origin.hits, 1);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.verdict, r.layer ?? '', r.target]),
      [
        ['allow', '', url],
        ['block', 'dlp', url],
      ],
    );
  } finally {
    await f.close();
  }
});

test('requests pipelined in the CONNECT’s own write are judged one by one and answered in order', async () => {
  const f = await fixture();
  try {
    const host = `plain.example.test:${f.origin.port}`;
    const answers = await throughTunnel(
      f,
      host,
      `GET /repos/a HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET /admin HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET /repos/b HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.deepEqual(statuses(answers), [200, 403, 200]);
    assert.equal(f.origin.hits, 2);
    // Judged as they arrive, a refusal may be recorded before the allowance of one before it.
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner
        .map((r) => [r.verdict, new URL(r.target).pathname])
        .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
      [
        ['block', '/admin'],
        ['allow', '/repos/a'],
        ['allow', '/repos/b'],
      ],
    );
  } finally {
    await f.close();
  }
});

for (const [what, request, status, reason] of [
  [
    'a request smuggled behind a body (Content-Length with Transfer-Encoding)',
    (host: string) =>
      `GET /repos/a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 42\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    400,
    /^malformed request refused \(HPE_/,
  ],
  [
    'a CONNECT',
    () => 'CONNECT open.example.test:443 HTTP/1.1\r\nHost: open.example.test:443\r\n\r\n',
    400,
    /tunnels do not nest/,
  ],
  [
    'an absolute-form request',
    (host: string) =>
      `GET http://open.example.test:${host.split(':')[1]}/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    400,
    /names a path \(origin-form\)/,
  ],
] as const) {
  test(`${what} inside a plain tunnel is refused ${status} with a receipt; the origin gets nothing`, async () => {
    const f = await fixture();
    try {
      const host = `plain.example.test:${f.origin.port}`;
      const answers = await throughTunnel(f, host, request(host));
      assert.deepEqual(statuses(answers), [status], answers);
      assert.equal(f.origin.hits, 0);
      const inner = (await records(f)).filter((r) => r.transport === 'intercept');
      assert.deepEqual(
        inner.map((r) => [r.verdict, r.layer]),
        [['block', 'request']],
      );
      assert.match(inner[0]?.pattern ?? '', reason);
    } finally {
      await f.close();
    }
  });
}

test('a plain tunnel’s first bytes must come within the ClientHello limit; its request then within the request limit', async () => {
  const f = await fixture({ limits: { clientHelloTimeoutMs: 300, requestTimeoutMs: 600 } });
  try {
    const host = `plain.example.test:${f.origin.port}`;
    // Half a method: neither TLS nor HTTP yet.
    const silent = await throughTunnel(f, host, 'GE');
    assert.equal(silent, '');
    // A method and its space: HTTP, whose request never ends.
    const trickled = await throughTunnel(f, host, `GET /repos/x HTTP/1.1\r\nHost: ${host}\r\n`);
    assert.deepEqual(statuses(trickled), [408]);
    assert.equal(f.origin.hits, 0);
    const all = await records(f);
    assert.deepEqual(
      all.map((r) => [r.transport, r.verdict, r.layer ?? '']),
      [
        ['connect', 'allow', ''],
        ['connect', 'block', 'sni'],
        ['connect', 'allow', ''],
        ['intercept', 'block', 'limit'],
        ['connect', 'allow', 'outcome'],
      ],
    );
    assert.equal(all[1]?.pattern, 'no ClientHello or HTTP request within 300 ms');
  } finally {
    await f.close();
  }
});

test('a plain tunnel holds an active tunnel slot for its life', async () => {
  const f = await fixture({ limits: { maxActiveTunnels: 1 } });
  try {
    const host = `plain.example.test:${f.origin.port}`;
    const { socket, status } = await openTunnel(f.proxy.port, host);
    assert.equal(status, 200);
    const ask = (path: string) => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      return nextStatus(socket);
    };
    assert.equal(await ask('/repos/a'), 200);
    const second = await rawExchange(
      f.proxy.port,
      `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    assert.equal(statusOf(second.text), 503, second.text);
    assert.match(second.text, /too many active tunnels and WebSockets \(limit 1\)/);
    assert.equal(await ask('/repos/b'), 200);
    socket.destroy();
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 0, 2_000, 'the slot freed');
  } finally {
    await f.close();
  }
});

test('requests in a plain tunnel go to the address its CONNECT was admitted to: the name is resolved once', async () => {
  const looked: string[] = [];
  const f = await fixture({
    pins: { 'plain.example.test': '127.0.0.1' },
    lookup: (hostname) => {
      looked.push(hostname);
      return Promise.resolve([{ address: '127.0.0.1' }]);
    },
  });
  try {
    const base = `http://scan.example.test:${f.origin.port}`;
    const result = await curlTunnelled(f, [
      '-w',
      '%{http_code}\\n',
      ...['/a', '/b'].flatMap((path) => ['-o', '/dev/null', base + path]),
    ]);
    assert.equal(result.stdout.toString(), '200\n200\n');
    assert.deepEqual(looked, ['scan.example.test']);
  } finally {
    await f.close();
  }
});

test('ws:// through a plain tunnel: echo passes, a secret closes with 1008', async () => {
  const f = await fixture();
  try {
    const host = `open.example.test:${f.origin.port}`;
    const { socket: raw, status } = await openTunnel(f.proxy.port, host);
    assert.equal(status, 200);
    const socket = new WebSocket(`ws://${host}/echo`, { createConnection: () => raw as Socket });
    await once(socket, 'open');
    socket.send('through the tunnel');
    const [echoed] = (await once(socket, 'message')) as [Buffer];
    assert.equal(echoed.toString(), 'through the tunnel');
    socket.send(`leak ${GITHUB_TOKEN}`);
    const [code] = (await once(socket, 'close')) as [number];
    assert.equal(code, 1008);
    assert.deepEqual(f.messages, ['through the tunnel']);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.method, r.verdict, r.layer ?? '', r.target]),
      [
        ['WS', 'allow', '', `ws://${host}/echo`],
        ['WS', 'block', 'dlp', `ws://${host}/echo`],
        ['WS', 'allow', 'outcome', `ws://${host}/echo`],
      ],
    );
  } finally {
    await f.close();
  }
});

test("Node's own fetch of an http:// URL in the agent's environment is judged inside its tunnel, under a host rule or a URL prefix (NODE_USE_ENV_PROXY; Node 20 does not read it)", async () => {
  const f = await fixture();
  try {
    const base = `http://plain.example.test:${f.origin.port}`;
    const fetched = (path: string) => fetchInAgentEnvironment(f.proxy, base + path);
    if (nodeReadsEnvProxy()) {
      assert.deepEqual(await fetched('/repos/x'), [200, null]);
      assert.deepEqual(await fetched('/admin'), [403, 'path']);
      const prefixed = `http://prefix.example.test:${f.origin.port}/api/x`;
      assert.deepEqual(await fetchInAgentEnvironment(f.proxy, prefixed), [200, null]);
      assert.equal(f.origin.hits, 2);
      const all = await records(f);
      assert.deepEqual(
        all
          .filter((r) => r.decision_phase !== 'outcome')
          .map((r) => [r.transport, r.verdict, r.target]),
        [
          ['connect', 'allow', `plain.example.test:${f.origin.port}`],
          ['intercept', 'allow', `${base}/repos/x`],
          ['connect', 'allow', `plain.example.test:${f.origin.port}`],
          ['intercept', 'block', `${base}/admin`],
          ['connect', 'allow', `prefix.example.test:${f.origin.port}`],
          ['intercept', 'allow', prefixed],
        ],
      );
    } else {
      const [outcome, why] = await fetched('/repos/x');
      assert.equal(outcome, 'failed');
      assert.match(why ?? '', /dial guard: refused a connection to plain\.example\.test/);
      assert.equal(f.origin.hits, 0);
    }
  } finally {
    await f.close();
  }
});

test('an http:// URL prefix admits its plain HTTP in a tunnel, judged on scheme and path; TLS in that tunnel is opened and refused', async () => {
  const f = await fixture();
  try {
    const base = `prefix.example.test:${f.origin.port}`;
    const inside = await curlTunnelled(f, ['-i', `http://${base}/api/r/tunnelled-2`]);
    assert.equal(parseCurlResponse(inside.stdout).status, 200, inside.stderr);
    const outside = await curlTunnelled(f, ['-i', `http://${base}/admin`]);
    assert.equal(parseCurlResponse(outside.stdout).headers['x-pipelock-egress-block'], 'path');
    const tls = await curlTrustingRunCa(f.proxy, ['-i', `https://${base}/api/x`]);
    const refused = parseCurlResponse(tls.stdout);
    assert.equal(refused.status, 403, tls.stderr);
    assert.match(refused.body.toString(), /allows only http, not https/);
    // A client that does not trust the run CA is told there is no way out for TLS here.
    const untrusting = await curl(['--proxy', f.proxy.proxyUrl, `https://${base}/api/x`]);
    assert.notEqual(untrusting.code, 0);
    assert.equal(f.origin.hits, 1);
    const all = await records(f);
    assert.match(
      all.at(-1)?.pattern ?? '',
      /^TLS interception of .* failed: .*; egress\[3\] \(http:\/\/prefix\.example\.test:\d+\/api\/\) admits plain http only, so nothing over TLS passes there$/,
    );
    assert.deepEqual(
      all
        .filter((r) => r.decision_phase !== 'outcome')
        .map((r) => [r.transport, r.verdict, r.layer ?? '', r.target]),
      [
        ['connect', 'allow', '', base],
        ['intercept', 'allow', '', `http://${base}/api/r/tunnelled-2`],
        ['connect', 'allow', '', base],
        ['intercept', 'block', 'path', `http://${base}/admin`],
        ['connect', 'allow', '', base],
        ['intercept', 'block', 'path', `https://${base}/api/x`],
        ['connect', 'allow', '', base],
        ['connect', 'block', 'tls', base],
      ],
    );
    assert.deepEqual(f.early, []);
  } finally {
    await f.close();
  }
});

test('a served tunnel the engine closes for being idle says so in its outcome; one waiting for its origin is not idle', async () => {
  const f = await fixture({ limits: { idleTimeoutMs: 300 } });
  const host = `plain.example.test:${f.origin.port}`;
  /** Sends a GET for `path` in a new tunnel; resolves with its answer once the tunnel is closed. */
  const served = async (path: string, closeWhenAnswered: boolean): Promise<string> => {
    const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const { socket, status, text } = await openTunnel(f.proxy.port, host, request);
    assert.equal(status, 200);
    let answer = text.slice(text.indexOf('\r\n\r\n') + 4);
    // The engine answers in chunks: the last one is empty.
    const answered = () => answer.endsWith('\r\n0\r\n\r\n');
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (closeWhenAnswered && answered()) socket.end();
    });
    if (closeWhenAnswered && answered()) socket.end();
    await once(socket, 'close');
    return answer;
  };
  try {
    // Answered, then quiet: the engine closes the connection.
    assert.match(await served('/repos/r/idle', false), /^HTTP\/1\.1 200 /);
    // Quiet past the limit while the origin takes its time, then closed by the client.
    assert.match(await served('/repos/slow/r', true), /^HTTP\/1\.1 200 /);
    const outcomes = (await records(f))
      .filter((r) => r.decision_phase === 'outcome')
      .map((r) => r.pattern);
    assert.deepEqual(outcomes, [
      'status=200 intercepted_requests=1 reason=idle_timeout',
      'status=200 intercepted_requests=1 reason=complete',
    ]);
  } finally {
    await f.close();
  }
});

test('a client that resets a served tunnel ends it as a close does: its outcome receipt, no internal error', async () => {
  const internal: string[] = [];
  const f = await fixture({ onInternalError: (message) => internal.push(message) });
  try {
    const target = `plain.example.test:${f.origin.port}`;
    const { socket, status } = await openTunnel(f.proxy.port, target, Buffer.from('GET '));
    assert.equal(status, 200);
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 1, 2_000, 'the tunnel');
    socket.resetAndDestroy();
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 0, 5_000, 'the tunnel to end');
    const all = await records(f);
    assert.deepEqual(internal, []);
    assert.deepEqual(
      all.map((r) => [r.transport, r.verdict, r.layer ?? '']),
      [
        ['connect', 'allow', ''],
        ['connect', 'allow', 'outcome'],
      ],
    );
    assert.match(all[1]?.pattern ?? '', /^status=200 intercepted_requests=0 reason=complete$/);
  } finally {
    await f.close();
  }
});
