import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import {
  assertNoViolations,
  cleanup,
  curl,
  curlTrustingRunCa,
  echo,
  fetchInAgentEnvironment,
  makePki,
  nodeReadsEnvProxy,
  openTunnel,
  parseCurlResponse,
  readEvidenceDir,
  runCa,
  runCaFile,
  sealedRecords,
  startEngine,
  startHttpsOrigin,
  waitFor,
  type EngineSetup,
  type Handler,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { ActionRecord } from '../../src/receipts/index.js';
import { captureHello } from './tls-hello.js';

const NAMES = ['api.example.test', 'plain.example.test', 'other.example.test'];
const pki = makePki(NAMES);
after(() => cleanup(pki.dir));
after(assertNoViolations);

interface Fixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  /** TLS sessions the origin completed. */
  sessions: number;
  close(): Promise<void>;
}

const policy = (port: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
    methods: ["GET", "HEAD"]
    paths: ["/repos/"]
  - destination: "other.example.test"
    ports: [${port}]
    methods: ["GET"]
  - destination: "plain.example.test"
    ports: [${port}]
  # The origins listen on loopback: naming it lets the SSRF guard pass the pinned names.
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`;

interface FixtureSetup {
  readonly policyFor?: (port: number) => string;
  /** The names pinned to 127.0.0.1. */
  readonly pinned?: readonly string[];
  readonly limits?: EngineSetup['limits'];
  readonly handler?: Handler;
}

/** An HTTPS origin (echo) on loopback and an engine with `policyFor(its port)`, names pinned there. */
async function fixture({
  policyFor = policy,
  pinned = NAMES,
  limits,
  handler = echo,
}: FixtureSetup = {}): Promise<Fixture> {
  const origin = await startHttpsOrigin(handler, pki);
  const proxy = await startEngine({
    pins: Object.fromEntries(pinned.map((name) => [name, '127.0.0.1'])),
    upstreamCa: [pki.caCert],
    policy: policyFor(origin.port),
    ...(limits ? { limits } : {}),
  });
  const f: Fixture = {
    origin,
    proxy,
    sessions: 0,
    async close() {
      await proxy.stop();
      await origin.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
  origin.server.on('secureConnection', () => f.sessions++);
  return f;
}

const records = (f: Fixture): Promise<ActionRecord[]> => sealedRecords(f.proxy);

const summary = (rs: readonly ActionRecord[]) =>
  rs.map((r) => [r.transport, r.decision_phase ?? '', r.verdict, r.layer ?? '', r.method]);

/** A TLS session with the engine inside a tunnel to api.example.test, trusting the run CA. */
async function interceptedSession(
  f: Fixture,
  options: Pick<ConnectionOptions, 'maxVersion'> = {},
): Promise<{ inner: TLSSocket; answer: () => string }> {
  const { socket, status } = await openTunnel(f.proxy.port, `api.example.test:${f.origin.port}`);
  assert.equal(status, 200);
  const inner = tlsConnect({
    socket,
    servername: 'api.example.test',
    ca: runCa.certificatePem,
    ...options,
  });
  inner.on('error', () => undefined);
  await once(inner, 'secureConnect');
  let answer = '';
  inner.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  return { inner, answer: () => answer };
}

test('curl: an allowed GET inside an intercepted tunnel reaches the origin, with its own receipt', async () => {
  const f = await fixture();
  try {
    const url = `https://api.example.test:${f.origin.port}/repos/acme/widget?x=1`;
    const result = await curlTrustingRunCa(f.proxy, ['-i', url]);
    assert.equal(result.code, 0, result.stderr);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as {
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(seen.url, '/repos/acme/widget?x=1');
    assert.equal(seen.headers.host, `api.example.test:${f.origin.port}`);
    const all = await records(f);
    assert.deepEqual(summary(all), [
      ['connect', 'intent', 'allow', '', 'CONNECT'],
      ['intercept', 'intent', 'allow', '', 'GET'],
      ['connect', 'outcome', 'allow', 'outcome', 'CONNECT'],
    ]);
    assert.equal(all[1]?.target, url);
    assert.match(all[2]?.pattern ?? '', /intercepted_requests=1/);
  } finally {
    await f.close();
  }
});

test('audit mode: a tunnel enforce mode would refuse is opened and scanned, so a secret in a header is refused as over plain HTTP', async () => {
  const f = await fixture({
    policyFor: (port) => `version: "1.0"
mode: audit
egress:
  - destination: "api.example.test"
    ports: [${port}]
    scan: true
  - destination: "127.0.0.1"
    ports: [${port}]
`,
  });
  try {
    const token = `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`;
    const codes: string[] = [];
    for (const [url, headers] of [
      [`https://other.example.test:${f.origin.port}/clean`, []],
      [`https://other.example.test:${f.origin.port}/leak`, ['-H', `Authorization: token ${token}`]],
    ] as const) {
      const result = await curlTrustingRunCa(f.proxy, [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        ...headers,
        url,
      ]);
      codes.push(result.stdout.toString());
    }
    assert.deepEqual(codes, ['200', '403']);
    assert.equal(f.origin.hits, 1);
    const all = await records(f);
    assert.deepEqual(
      all
        .filter((r) => r.decision_phase !== 'outcome')
        .map((r) => [
          r.transport,
          r.verdict,
          r.layer ?? '',
          r.method,
          r.target.replace(/:[0-9]+/, ''),
        ]),
      [
        ['connect', 'warn', 'destination', 'CONNECT', 'other.example.test'],
        ['intercept', 'warn', 'destination', 'GET', 'https://other.example.test/clean'],
        ['connect', 'warn', 'destination', 'CONNECT', 'other.example.test'],
        ['intercept', 'block', 'dlp', 'GET', 'https://other.example.test/leak'],
      ],
    );
    for (const record of all)
      assert.ok(!`${record.target} ${record.pattern ?? ''}`.includes(token));
  } finally {
    await f.close();
  }
});

test('curl: several requests on one intercepted connection are judged one by one', async () => {
  const f = await fixture();
  try {
    const base = `https://api.example.test:${f.origin.port}`;
    const result = await curlTrustingRunCa(f.proxy, [
      '-w',
      '%{http_code}\\n',
      ...['/repos/a', '/elsewhere', '/repos/b'].flatMap((path) => ['-o', '/dev/null', base + path]),
    ]);
    assert.equal(result.stdout.toString(), '200\n403\n200\n');
    const all = await records(f);
    const inner = all.filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.verdict, r.layer ?? '', new URL(r.target).pathname]),
      [
        ['allow', '', '/repos/a'],
        ['block', 'path', '/elsewhere'],
        ['allow', '', '/repos/b'],
      ],
    );
    assert.equal(
      all.filter((r) => r.method === 'CONNECT' && r.decision_phase === 'intent').length,
      1,
    );
    assert.equal(f.origin.hits, 2);
  } finally {
    await f.close();
  }
});

for (const [what, args, layer] of [
  ['a POST to a GET-only destination', ['-X', 'POST', '--data', 'x=1'], 'method'],
  ['a path outside paths', [], 'path'],
  ['a Host header naming another host', ['-H', 'Host: other.example.test'], 'host'],
] as const) {
  test(`curl: ${what} inside the tunnel is refused 403 with a receipt, nothing reaches the origin`, async () => {
    const f = await fixture();
    try {
      const path = layer === 'path' ? '/admin' : '/repos/x';
      const result = await curlTrustingRunCa(f.proxy, [
        '-i',
        ...args,
        `https://api.example.test:${f.origin.port}${path}`,
      ]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, 403, result.stdout.toString());
      assert.equal(response.headers['x-pipelock-egress-block'], layer);
      assert.match(response.body.toString(), /^blocked: /);
      assert.equal(f.origin.hits, 0);
      const blocked = (await records(f)).filter((r) => r.transport === 'intercept');
      assert.deepEqual(
        blocked.map((r) => [r.verdict, r.layer]),
        [['block', layer]],
      );
    } finally {
      await f.close();
    }
  });
}

test('a destination without L7 rules is tunnelled: the client verifies the origin itself', async () => {
  const f = await fixture();
  try {
    const url = `https://plain.example.test:${f.origin.port}/anything`;
    const own = await curl(['--proxy', f.proxy.proxyUrl, '--cacert', pki.caFile, url]);
    assert.equal(own.code, 0, own.stderr);
    // Nothing the run CA signed is on this path: trusting only it fails.
    const runOnly = await curlTrustingRunCa(f.proxy, [url]);
    assert.equal(runOnly.code, 60, runOnly.stderr);
    const all = await records(f);
    assert.equal(all.filter((r) => r.transport === 'intercept').length, 0);
  } finally {
    await f.close();
  }
});

test('a client that rejects the run CA (pinning) gets no answer; the receipt names the way out', async () => {
  const f = await fixture();
  try {
    const result = await curl([
      '--proxy',
      f.proxy.proxyUrl,
      '--cacert',
      pki.caFile,
      `https://api.example.test:${f.origin.port}/repos/x`,
    ]);
    assert.equal(result.code, 60, result.stderr);
    assert.equal(f.sessions, 0);
    const all = await records(f);
    const connects = all.filter((r) => r.transport === 'connect');
    assert.deepEqual(
      connects.map((r) => [r.verdict, r.layer ?? '']),
      [
        ['allow', ''],
        ['block', 'tls'],
      ],
    );
    assert.match(connects[1]?.pattern ?? '', /rejected the interception certificate/);
    assert.match(connects[1]?.pattern ?? '', /needs egress\[0\] to say "tls: passthrough"/);
  } finally {
    await f.close();
  }
});

for (const [client, hangUp] of [
  [
    'Node tls not trusting the run CA',
    (raw: Socket) => {
      const tls = tlsConnect({ socket: raw, servername: 'api.example.test', ca: pki.caCert });
      tls.on('error', () => undefined);
    },
  ],
  [
    'sending its ClientHello and then its FIN',
    async (raw: Socket) => raw.end(await captureHello({ servername: 'api.example.test' })),
  ],
] as const) {
  test(`a client that hangs up mid-handshake without an alert (${client}) is recorded at once and frees its slot`, async () => {
    const f = await fixture();
    try {
      const { socket, status } = await openTunnel(
        f.proxy.port,
        `api.example.test:${f.origin.port}`,
      );
      assert.equal(status, 200);
      await hangUp(socket);
      // Well inside the 10 s handshake limit, which would otherwise hold the slot.
      await waitFor(() => f.proxy.engine.counters.activeTunnels === 0, 5_000, 'the slot to free');
      assert.equal(f.sessions, 0);
      const blocked = (await records(f)).filter((r) => r.verdict === 'block');
      assert.deepEqual(
        blocked.map((r) => [r.transport, r.layer]),
        [['connect', 'tls']],
      );
      assert.match(
        blocked[0]?.pattern ?? '',
        /^TLS interception of api\.example\.test:\d+ failed: the client closed the connection during the TLS handshake: it likely does not trust the run CA, or pins certificates; a client that cannot be intercepted .* needs egress\[0\] to say "tls: passthrough"/,
      );
    } finally {
      await f.close();
    }
  });
}

const NODE_CLIENT = `
import { EnvHttpProxyAgent, fetch } from 'undici';
const dispatcher = new EnvHttpProxyAgent();
const url = process.argv[1];
const get = await fetch(url, { dispatcher });
const post = await fetch(url, { dispatcher, method: 'POST', body: 'payload' });
console.log(JSON.stringify([
  [get.status, await get.text()],
  [post.status, post.headers.get('x-pipelock-egress-block'), await post.text()],
]));
await dispatcher.close();
`;

test('Node fetch (undici) through HTTPS_PROXY, trusting the run CA via NODE_EXTRA_CA_CERTS: GET passes, POST is refused', async () => {
  const f = await fixture();
  try {
    const url = `https://other.example.test:${f.origin.port}/ok`;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--input-type=module', '-e', NODE_CLIENT, url],
        {
          cwd: process.cwd(),
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HTTPS_PROXY: f.proxy.proxyUrl,
            NODE_EXTRA_CA_CERTS: runCaFile,
          },
          timeout: 30_000,
        },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    const [get, post] = JSON.parse(stdout) as [[number, string], [number, string, string]];
    assert.equal(get[0], 200);
    assert.equal((JSON.parse(get[1]) as { url: string }).url, '/ok');
    assert.deepEqual(post.slice(0, 2), [403, 'method']);
    assert.match(post[2], /method POST is not allowed/);
  } finally {
    await f.close();
  }
});

test("Node's own fetch in the agent's environment goes through the engine (NODE_USE_ENV_PROXY; Node 20 does not read it)", async () => {
  const f = await fixture();
  try {
    const base = `https://api.example.test:${f.origin.port}`;
    const fetched = (path: string) => fetchInAgentEnvironment(f.proxy, base + path);
    if (nodeReadsEnvProxy()) {
      assert.deepEqual(await fetched('/repos/x'), [200, null]);
      assert.deepEqual(await fetched('/admin'), [403, 'path']);
      assert.equal(f.origin.hits, 1);
      const inner = (await records(f)).filter((r) => r.transport === 'intercept');
      assert.deepEqual(
        inner.map((r) => [r.verdict, new URL(r.target).pathname]),
        [
          ['allow', '/repos/x'],
          ['block', '/admin'],
        ],
      );
    } else {
      const [outcome, why] = await fetched('/repos/x');
      assert.equal(outcome, 'failed');
      assert.match(why ?? '', /dial guard: refused a connection to api\.example\.test/);
      assert.equal(f.origin.hits, 0);
    }
  } finally {
    await f.close();
  }
});

test('an origin whose certificate the engine does not trust gets nothing: 502 with an outcome receipt', async () => {
  const origin = await startHttpsOrigin(echo, pki);
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    policy: policy(origin.port),
  });
  try {
    const result = await curlTrustingRunCa(proxy, [
      '-i',
      `https://api.example.test:${origin.port}/repos/x`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 502, result.stdout.toString());
    assert.equal(response.headers['x-pipelock-egress-block'], 'upstream');
    assert.match(response.body.toString(), /self[- ]signed|unable to verify|certificate/i);
    assert.equal(origin.hits, 0);
  } finally {
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('inside a tunnel the path and query go upstream as spelled; a dot segment is refused 400', async () => {
  const f = await fixture();
  const host = `api.example.test:${f.origin.port}`;
  try {
    const { inner, answer } = await interceptedSession(f);
    const spelled = `/repos/a%2Fb;c/%7e{}?a=<>&b="q"&c='x'`;
    inner.write(
      `GET ${spelled} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /repos/x/../y HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    await waitFor(() => /HTTP\/1\.1 400 /.test(answer()), 5_000, 'the second answer');
    inner.destroy();
    assert.match(answer(), /^HTTP\/1\.1 200 /);
    assert.equal(JSON.parse(/"url":("(?:[^"\\]|\\.)*")/.exec(answer())?.[1] ?? '""'), spelled);
    assert.match(
      answer(),
      /X-Pipelock-Egress-Block: request\r\n[^]*blocked: the path holds a dot segment/,
    );
    const inside = (await records(f)).filter((r) => r.transport === 'intercept');
    // Pipelined requests are judged at once: their receipts come in either order.
    assert.deepEqual(
      new Map(inside.map((r) => [r.target, r.verdict])),
      new Map([
        [`https://${host}${spelled}`, 'allow'],
        [`https://${host}/repos/x/../y`, 'block'],
      ]),
    );
  } finally {
    await f.close();
  }
});

test('inside a tunnel a 304 declaring a length is relayed without a body, and the tunnel goes on', async () => {
  const f = await fixture({
    handler: (req, res) => {
      if (req.url !== '/repos/not-modified') return echo(req, res);
      res.writeHead(304, { etag: '"x"', 'content-length': '99' });
      res.end();
    },
  });
  const host = `api.example.test:${f.origin.port}`;
  try {
    const { inner, answer } = await interceptedSession(f);
    inner.write(
      `GET /repos/not-modified HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /repos/after HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    );
    await waitFor(() => answer().includes('/repos/after'), 5_000, 'the second answer');
    assert.match(answer(), /^HTTP\/1\.1 304 [^]*content-length: 99\r\n[^]*\r\n\r\nHTTP\/1\.1 200 /);
    inner.destroy();
    const outcomes = (await records(f)).filter((r) => r.decision_phase === 'outcome');
    assert.deepEqual(
      outcomes.map((r) => [r.transport, r.pattern]),
      [['connect', 'status=200 intercepted_requests=2 reason=complete']],
    );
  } finally {
    await f.close();
  }
});

const PYTHON_CLIENT = `
import json, ssl, sys, urllib.request, urllib.error
proxy, cafile, url = sys.argv[1:4]
context = ssl.create_default_context(cafile=cafile)
context.verify_flags |= ssl.VERIFY_X509_STRICT
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({"https": proxy}), urllib.request.HTTPSHandler(context=context))
out = []
for method, data in (("GET", None), ("POST", b"x=1")):
    try:
        with opener.open(urllib.request.Request(url, data=data, method=method), timeout=20) as r:
            out.append([method, r.status, r.read().decode()])
    except urllib.error.HTTPError as e:
        out.append([method, e.code, e.read().decode()])
print(json.dumps(out))
`;

/** Python urllib's GET and POST to `url` through the engine: [method, status, body] each. */
function pythonRequests(f: Fixture, url: string): Promise<[string, number, string][]> {
  return new Promise((resolve, reject) =>
    execFile(
      'python3',
      ['-c', PYTHON_CLIENT, f.proxy.proxyUrl, runCaFile, url],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 30_000 },
      (error, out, err) =>
        error
          ? reject(new Error(`${error.message}\n${err}`))
          : resolve(JSON.parse(out) as [string, number, string][]),
    ),
  );
}

test('Python urllib (strict X.509 checks) trusting the run CA: GET passes, POST is refused', async () => {
  const f = await fixture();
  try {
    const [get, post] = await pythonRequests(f, `https://other.example.test:${f.origin.port}/py`);
    assert.equal(get?.[1], 200);
    assert.equal((JSON.parse(get?.[2] ?? '{}') as { url: string }).url, '/py');
    assert.equal(post?.[1], 403);
    assert.match(post?.[2] ?? '', /^blocked: method POST/);
  } finally {
    await f.close();
  }
});

test('the leaf also names the host as the client spelled it: a trailing dot, an IPv4-mapped IPv6 address', async () => {
  const policyFor = (port: number) => `version: "1.0"
egress:
  - destination: "other.example.test"
    ports: [${port}]
    methods: ["GET"]
  - destination: "127.0.0.1"
    ports: [${port}]
    methods: ["GET"]
`;
  const f = await fixture({ policyFor, pinned: ['other.example.test'] });
  try {
    // OpenSSL (under Python) checks the name with its dot; curl the address's 16 bytes.
    const [get, post] = await pythonRequests(f, `https://other.example.test.:${f.origin.port}/dot`);
    assert.equal(get?.[1], 200, get?.[2]);
    assert.equal(post?.[1], 403);
    const mapped = `https://[::ffff:127.0.0.1]:${f.origin.port}/mapped`;
    const viaCurl = await curlTrustingRunCa(f.proxy, ['-i', mapped]);
    assert.equal(parseCurlResponse(viaCurl.stdout).status, 200, viaCurl.stderr);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.method, r.verdict, r.target]),
      [
        ['GET', 'allow', `https://other.example.test:${f.origin.port}/dot`],
        ['POST', 'block', `https://other.example.test:${f.origin.port}/dot`],
        ['GET', 'allow', `https://127.0.0.1:${f.origin.port}/mapped`],
      ],
    );
  } finally {
    await f.close();
  }
});

test('a client that speaks only HTTP/2 is refused at the handshake, and the receipt says why', async () => {
  const f = await fixture();
  try {
    const { socket: raw, status } = await openTunnel(
      f.proxy.port,
      `api.example.test:${f.origin.port}`,
    );
    assert.equal(status, 200);
    const client = tlsConnect({
      socket: raw,
      servername: 'api.example.test',
      ca: runCa.certificatePem,
      ALPNProtocols: ['h2'],
    });
    const [error] = (await once(client, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
    assert.equal(f.sessions, 0);
    const blocked = (await records(f)).filter((r) => r.verdict === 'block');
    assert.equal(blocked[0]?.layer, 'tls');
    assert.match(blocked[0]?.pattern ?? '', /offered no HTTP\/1\.1/);
  } finally {
    await f.close();
  }
});

test('an IP-literal destination is intercepted too: the leaf names the address', async () => {
  const policyFor = (port: number) => `version: "1.0"
egress:
  - destination: "127.0.0.1"
    ports: [${port}]
    methods: ["GET"]
`;
  const { origin, proxy, close } = await fixture({ policyFor, pinned: [] });
  try {
    const base = `https://127.0.0.1:${origin.port}`;
    const get = await curlTrustingRunCa(proxy, ['-i', `${base}/ip`]);
    assert.equal(parseCurlResponse(get.stdout).status, 200, get.stderr);
    const post = await curlTrustingRunCa(proxy, ['-i', '-d', 'x', `${base}/ip`]);
    assert.equal(parseCurlResponse(post.stdout).status, 403);
    assert.equal(origin.hits, 1);
    await proxy.stop();
    const inner = readEvidenceDir(proxy.dir)
      .receipts.map((r) => r.action_record)
      .filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.method, r.verdict, r.target]),
      [
        ['GET', 'allow', `${base}/ip`],
        ['POST', 'block', `${base}/ip`],
      ],
    );
  } finally {
    await close();
  }
});

test('a name resolving to a loopback address whose rule judges methods and paths is intercepted and held to that rule; a passthrough name there is refused', async () => {
  const policyFor = (port: number) => `version: "1.0"
egress:
  - destination: "127.0.0.1"
    ports: [${port}]
    methods: ["GET"]
    paths: ["/ok/"]
  - destination: "plain.example.test"
    ports: [${port}]
  - destination: "other.example.test"
    ports: [${port}]
    tls: passthrough
default_deny: true
`;
  const { origin, proxy, close } = await fixture({
    policyFor,
    pinned: ['plain.example.test', 'other.example.test'],
  });
  try {
    const base = `https://plain.example.test:${origin.port}`;
    const get = await curlTrustingRunCa(proxy, ['-i', `${base}/ok/x`]);
    assert.equal(parseCurlResponse(get.stdout).status, 200, get.stderr);
    for (const args of [['-d', 'x', `${base}/ok/x`], [`${base}/admin`]]) {
      const refused = await curlTrustingRunCa(proxy, ['-i', ...args]);
      assert.equal(parseCurlResponse(refused.stdout).status, 403, args.join(' '));
    }
    const passthrough = await curl([
      ...['--proxy', proxy.proxyUrl, '--cacert', pki.caFile],
      `https://other.example.test:${origin.port}/ok/x`,
    ]);
    assert.equal(passthrough.code, 56, passthrough.stderr);
    assert.equal(origin.hits, 1);
    await proxy.stop();
    const blocks = readEvidenceDir(proxy.dir)
      .receipts.map((r) => r.action_record)
      .filter((r) => r.verdict === 'block');
    assert.deepEqual(
      blocks.map((r) => [r.transport, r.method, r.layer]),
      [
        ['intercept', 'POST', 'ssrf'],
        ['intercept', 'GET', 'ssrf'],
        ['connect', 'CONNECT', 'ssrf'],
      ],
    );
    assert.equal(
      blocks[2]?.pattern,
      `SSRF blocked: other.example.test resolves to loopback address 127.0.0.1, whose rules judge methods, paths or content on port ${origin.port}, which only an intercepted tunnel lets them do; egress[2] says "tls: passthrough"`,
    );
  } finally {
    await close();
  }
});

test('a rule naming the loopback address a name resolves to with scan: true has requests through the name scanned', async () => {
  const token = `ghp_${'Zq3Rt7Yp1W'.repeat(3)}k9Lm2N`;
  const policyFor = (port: number) => `version: "1.0"
egress:
  - destination: "127.0.0.1"
    ports: [${port}]
    scan: true
  - destination: "plain.example.test"
    ports: [${port}]
default_deny: true
`;
  const { origin, proxy, close } = await fixture({ policyFor, pinned: ['plain.example.test'] });
  try {
    const url = `https://plain.example.test:${origin.port}/x`;
    const refused = await curlTrustingRunCa(proxy, ['-i', '-H', `X-Token: ${token}`, url]);
    const response = parseCurlResponse(refused.stdout);
    assert.equal(response.status, 403, refused.stderr);
    assert.equal(response.headers['x-pipelock-egress-block'], 'dlp');
    assert.equal(origin.hits, 0);
    assert.equal(
      parseCurlResponse((await curlTrustingRunCa(proxy, ['-i', url])).stdout).status,
      200,
    );
  } finally {
    await close();
  }
});

test('limits hold inside the tunnel too: oversized headers get 431 with an intercept receipt', async () => {
  const f = await fixture();
  try {
    const result = await curlTrustingRunCa(f.proxy, [
      '-i',
      '-H',
      `X-Big: ${'a'.repeat(20 * 1024)}`,
      `https://api.example.test:${f.origin.port}/repos/x`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 431, result.stdout.toString().slice(0, 300));
    assert.equal(response.headers['x-pipelock-egress-block'], 'limit');
    assert.equal(f.origin.hits, 0);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.verdict, r.layer]),
      [['block', 'limit']],
    );
  } finally {
    await f.close();
  }
});

test('a CONNECT inside an intercepted tunnel is refused with a receipt: tunnels do not nest', async () => {
  const f = await fixture();
  try {
    const { inner, answer } = await interceptedSession(f);
    inner.write('CONNECT other.example.test:443 HTTP/1.1\r\nHost: other.example.test:443\r\n\r\n');
    await once(inner, 'end');
    inner.destroy();
    assert.match(answer(), /^HTTP\/1\.1 400 /);
    assert.match(answer(), /X-Pipelock-Egress-Block: request/);
    assert.match(answer(), /CONNECT inside a tunnel is refused: tunnels do not nest/);
    assert.equal(f.sessions, 0, 'nothing reached the origin');
    const nested = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      nested.map((r) => [r.verdict, r.layer, r.method, r.target]),
      [['block', 'request', 'CONNECT', 'other.example.test:443']],
    );
  } finally {
    await f.close();
  }
});

test('an expectation other than 100-continue inside the tunnel is refused 417 with an intercept receipt', async () => {
  const f = await fixture();
  try {
    const result = await curlTrustingRunCa(f.proxy, [
      '-i',
      '-H',
      'Expect: 200-ok',
      `https://api.example.test:${f.origin.port}/repos/x`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 417, result.stdout.toString().slice(0, 300));
    assert.equal(response.headers['x-pipelock-egress-block'], 'request');
    assert.equal(f.origin.hits, 0);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.verdict, r.layer, r.target]),
      [['block', 'request', `https://api.example.test:${f.origin.port}/repos/x`]],
    );
  } finally {
    await f.close();
  }
});

test('a request inside a tunnel whose handling fails is refused 500; its receipt names the tunnel URL', async () => {
  const f = await fixture();
  // Fault injection: the next forward throws, as a bug in it would.
  const engine = f.proxy.engine as unknown as { forward: (...args: unknown[]) => Promise<void> };
  engine.forward = () => {
    delete (engine as { forward?: unknown }).forward;
    return Promise.reject(new Error('a bug in forwarding'));
  };
  try {
    const url = `https://api.example.test:${f.origin.port}/repos/x`;
    const response = parseCurlResponse((await curlTrustingRunCa(f.proxy, ['-i', url])).stdout);
    assert.equal(response.status, 500);
    assert.equal(response.headers['x-pipelock-egress-block'], 'engine');
    assert.equal(f.origin.hits, 0);
    const inner = (await records(f)).filter((r) => r.transport === 'intercept');
    assert.deepEqual(
      inner.map((r) => [r.method, r.verdict, r.layer, r.target]),
      [['GET', 'block', 'engine', url]],
    );
  } finally {
    await f.close();
  }
});

test('inside a tunnel a request with two Host headers, or userinfo in its Host, is refused 403 (host)', async () => {
  const f = await fixture();
  const host = `api.example.test:${f.origin.port}`;
  try {
    for (const hosts of [`Host: ${host}\r\nHost: other.example.test`, `Host: evil@${host}`]) {
      const { inner, answer } = await interceptedSession(f);
      inner.write(`GET /repos/x HTTP/1.1\r\n${hosts}\r\nConnection: close\r\n\r\n`);
      await once(inner, 'close');
      assert.match(answer(), /^HTTP\/1\.1 403 [^]*x-pipelock-egress-block: host/i, answer());
    }
    assert.equal(f.sessions, 0, 'nothing reached the origin');
  } finally {
    await f.close();
  }
});

test('a client cannot renegotiate TLS inside an intercepted tunnel', async () => {
  const f = await fixture();
  try {
    const { inner } = await interceptedSession(f, { maxVersion: 'TLSv1.2' });
    const failed = new Promise<Error>((resolve) => inner.once('error', resolve));
    inner.renegotiate({ rejectUnauthorized: false }, () => undefined);
    const error = await Promise.race([
      failed,
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000)),
    ]);
    inner.destroy();
    assert.match(error?.message ?? 'the renegotiation went through', /no renegotiation/);
  } finally {
    await f.close();
  }
});

test('inside a tunnel, a partial request pipelined behind a complete one gets 408 after its answer', async () => {
  const f = await fixture({ limits: { requestTimeoutMs: 800 } });
  const host = `api.example.test:${f.origin.port}`;
  try {
    const { inner, answer } = await interceptedSession(f);
    const started = Date.now();
    // Both in one write: no later byte announces the second request.
    inner.write(
      `GET /repos/x HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /repos/y HTTP/1.1\r\nHost: ${host}\r\n`,
    );
    await Promise.race([once(inner, 'close'), new Promise((r) => setTimeout(r, 5_000))]);
    const elapsed = Date.now() - started;
    inner.destroy();
    assert.match(
      answer(),
      /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 408 /,
      `after ${elapsed} ms: ${answer()}`,
    );
    assert.ok(elapsed < 2_500, `the 408 came after ${elapsed} ms`);
    const timedOut = (await records(f)).filter((r) =>
      (r.pattern ?? '').includes('the request was not received within 800 ms'),
    );
    assert.deepEqual(
      timedOut.map((r) => [r.transport, r.verdict, r.target]),
      [['intercept', 'block', 'pipelock://request/unparsed']],
    );
  } finally {
    await f.close();
  }
});

const trickled: Array<[string, (host: string) => string]> = [
  ['its headers', (host) => `GET /repos/x HTTP/1.1\r\nHost: ${host}\r\nX-Slow: `],
  [
    'its body',
    (host) => `GET /repos/x HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100000\r\n\r\n`,
  ],
];

for (const [part, start] of trickled) {
  test(`a request inside a tunnel that trickles ${part} gets 408 within the request timeout, with a receipt`, async () => {
    const f = await fixture({ limits: { requestTimeoutMs: 800 } });
    const host = `api.example.test:${f.origin.port}`;
    try {
      const { inner, answer } = await interceptedSession(f);
      const started = Date.now();
      inner.write(start(host));
      // One byte every 100 ms: each resets an idle timer, none may reset the request's clock.
      while (answer() === '' && !inner.destroyed && Date.now() - started < 5_000) {
        await new Promise((r) => setTimeout(r, 100));
        if (inner.writable) inner.write('x');
      }
      const elapsed = Date.now() - started;
      inner.destroy();
      assert.match(answer(), /^HTTP\/1\.1 408 /, `after ${elapsed} ms: ${answer()}`);
      assert.match(answer(), /the request was not received within 800 ms/);
      assert.ok(elapsed < 2_500, `the 408 came after ${elapsed} ms`);
      // A request still in its headers gets a block receipt; one admitted, an outcome.
      const timedOut = (await records(f)).filter(
        (r) =>
          r.transport === 'intercept' &&
          (r.pattern ?? '').includes('the request was not received within 800 ms'),
      );
      assert.deepEqual(
        timedOut.map((r) => [r.decision_phase ?? '', r.verdict]),
        [part === 'its headers' ? ['', 'block'] : ['outcome', 'allow']],
      );
    } finally {
      await f.close();
    }
  });
}

test('a tunnel’s outcome receipt follows those of every request inside it, malformed ones counted', async () => {
  let arrived = (): void => undefined;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const f = await fixture({
    // The origin holds this one: its request is still being answered when the client leaves.
    handler: (req, res) => (req.url === '/repos/held' ? arrived() : echo(req, res)),
  });
  const host = `api.example.test:${f.origin.port}`;
  try {
    const left = await interceptedSession(f);
    left.inner.write(`GET /repos/held HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    await arrival;
    left.inner.destroy();
    await waitFor(() => f.proxy.engine.counters.activeTunnels === 0, 5_000, 'the tunnel to end');
    const malformed = await interceptedSession(f);
    malformed.inner.write(
      `GET /repos/x HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n`,
    );
    await once(malformed.inner, 'close');
    assert.match(malformed.answer(), /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 400 /);
    const all = await records(f);
    assert.deepEqual(summary(all.slice(0, 4)), [
      ['connect', 'intent', 'allow', '', 'CONNECT'],
      ['intercept', 'intent', 'allow', '', 'GET'],
      ['intercept', 'outcome', 'allow', 'outcome', 'GET'],
      ['connect', 'outcome', 'allow', 'outcome', 'CONNECT'],
    ]);
    assert.match(all[2]?.pattern ?? '', /status=499/);
    assert.match(all[3]?.pattern ?? '', /intercepted_requests=1 /);
    // Receipts of one connection's requests go in the order their decisions end.
    assert.deepEqual(summary(all.slice(4)).sort(), [
      ['connect', 'intent', 'allow', '', 'CONNECT'],
      ['connect', 'outcome', 'allow', 'outcome', 'CONNECT'],
      ['intercept', '', 'block', 'request', undefined],
      ['intercept', 'intent', 'allow', '', 'GET'],
    ]);
    assert.equal(all.at(-1)?.decision_phase, 'outcome');
    assert.match(all.at(-1)?.pattern ?? '', /intercepted_requests=2 /);
  } finally {
    await f.close();
  }
});

test('a tunnel stopped with a WebSocket handshake inside still pending keeps its outcome receipt', async () => {
  let arrived = (): void => undefined;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const f = await fixture({
    policyFor: (port) => `${policy(port)}websocket:\n  enabled: true\n`,
    // The origin never answers this handshake (nor times it out): it outlasts the stop.
    handler: (req, res) => (req.url === '/repos/ws-held' ? arrived() : echo(req, res)),
  });
  const host = `api.example.test:${f.origin.port}`;
  try {
    const { inner } = await interceptedSession(f);
    inner.write(
      `GET /repos/ws-held HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    await arrival;
    const all = await records(f);
    assert.deepEqual(
      summary(all).filter(([transport]) => transport === 'connect'),
      [
        ['connect', 'intent', 'allow', '', 'CONNECT'],
        ['connect', 'outcome', 'allow', 'outcome', 'CONNECT'],
      ],
    );
  } finally {
    await f.close();
  }
});
