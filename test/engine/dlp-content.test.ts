import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { once } from 'node:events';
import { connect } from 'node:net';
import { main } from '../../src/cli/main.js';
import type { DecisionEntry } from '../../src/engine/decision-log.js';
import { decodedViews } from '../../src/engine/dlp/decoded-views.js';
import {
  assertNoViolations,
  cleanup,
  curl,
  echo,
  makePki,
  parseCurlResponse,
  curlTrustingRunCa,
  rawExchange,
  sealedRecords,
  startEngine,
  startHttpsOrigin,
  startOrigin,
  tempDir,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { ActionRecord } from '../../src/receipts/index.js';
import type { EngineLimits } from '../../src/engine/limits.js';

// Fake credentials in real formats (never issued by anyone).
const GITHUB_TOKEN = `ghp_${'Zq3Rt7Yp1W'.repeat(3)}k9Lm2N`;
const AGENT_TOKEN = `ghp_${'Ab4Cd8Ef2G'.repeat(3)}h6Ij0K`;
const DEPLOY_KEY = 'p@ss/w0rd+with=sp3cial!chars';
const SECRET_SPELLINGS = [GITHUB_TOKEN, AGENT_TOKEN, DEPLOY_KEY].flatMap((value) => {
  const bytes = Buffer.from(value);
  return [
    value,
    encodeURIComponent(value),
    bytes.toString('base64').replace(/=+$/, ''),
    bytes.toString('base64url'),
    bytes.toString('hex'),
  ];
});

const NAMES = ['api.example.test', 'uploads.example.test', 'passthrough.example.test'];
const pki = makePki(NAMES);
after(() => cleanup(pki.dir));
after(assertNoViolations);

const policy = (port: number, plainPort: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}, ${plainPort}]
    scan: true
  - destination: "uploads.example.test"
    ports: [${port}, ${plainPort}]
  - destination: "passthrough.example.test"
    ports: [${port}]
    tls: passthrough
  - destination: "127.0.0.1"
    ports: [${port}, ${plainPort}]
secrets:
  - env: AGENT_TOKEN
    allow: ["api.example.test:${port}", "api.example.test:${plainPort}"]
  - env: DEPLOY_KEY
    allow: ["api.example.test:${port}", "api.example.test:${plainPort}"]
default_deny: true
`;

interface Fixture {
  readonly origin: Origin;
  readonly plain: Origin;
  readonly proxy: RunningEngine;
  readonly logged: DecisionEntry[];
  close(): Promise<void>;
}

async function fixture(limits?: Partial<EngineLimits>): Promise<Fixture> {
  const origin = await startHttpsOrigin(echo, pki);
  const plain = await startOrigin(echo);
  const logged: DecisionEntry[] = [];
  const proxy = await startEngine({
    pins: Object.fromEntries(NAMES.map((name) => [name, '127.0.0.1'])),
    upstreamCa: [pki.caCert],
    policy: policy(origin.port, plain.port),
    secretValues: { AGENT_TOKEN, DEPLOY_KEY },
    onDecision: (entry) => logged.push(entry),
    ...(limits ? { limits } : {}),
  });
  return {
    origin,
    plain,
    proxy,
    logged,
    async close() {
      await proxy.stop();
      await origin.close();
      await plain.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
}

/** curl through the engine, trusting the run CA; returns status, block layer and body. */
async function send(f: Fixture, url: string, args: readonly string[] = []) {
  const result = await curlTrustingRunCa(f.proxy, ['-i', ...args, url]);
  const response = parseCurlResponse(result.stdout);
  return {
    status: response.status,
    layer: response.headers['x-pipelock-egress-block'],
    body: response.body.toString(),
  };
}

/** The request receipts (plain HTTP and intercepted), after the seal. */
async function records(f: Fixture): Promise<ActionRecord[]> {
  return (await sealedRecords(f.proxy)).filter(
    (r) => r.transport === 'intercept' || r.transport === 'forward',
  );
}

const jsonBody = (value: unknown) => [
  '-H',
  'Content-Type: application/json',
  '--data-binary',
  JSON.stringify(value),
];

test('a GitHub token to a scan destination is blocked in the query, a header and a JSON body', async () => {
  const f = await fixture();
  try {
    const base = `https://api.example.test:${f.origin.port}`;
    const cases = [
      [`${base}/search?q=${GITHUB_TOKEN}`, [], 'URL'],
      [`${base}/x`, ['-H', `X-Debug: ${GITHUB_TOKEN}`], 'header X-Debug'],
      [`${base}/x`, jsonBody({ note: GITHUB_TOKEN }), 'body'],
      // JSON escapes cannot hide it.
      [
        `${base}/x`,
        ['--data-binary', `{"note":"${GITHUB_TOKEN.replace('g', '\\u0067')}"}`],
        'body',
      ],
      // Nor encodings: `echo "token: $GITHUB_TOKEN" | base64`, hex in a header.
      [
        `${base}/x`,
        jsonBody({ note: Buffer.from(`token: ${GITHUB_TOKEN}\n`).toString('base64') }),
        'body (base64-decoded)',
      ],
      [
        `${base}/x`,
        ['-H', `X-Trace: ${Buffer.from(`t=${GITHUB_TOKEN}`).toString('hex')}`],
        'header X-Trace (hex-decoded)',
      ],
    ] as const;
    for (const [url, args, where] of cases) {
      const answer = await send(f, url, args);
      assert.equal(answer.status, 403, `${where}: ${answer.body}`);
      assert.equal(answer.layer, 'dlp');
      assert.equal(answer.body, `blocked: DLP match: github-token in the ${where}\n`);
    }
    assert.equal(f.origin.hits, 0);
    const blocked = await records(f);
    assert.deepEqual(
      blocked.map((r) => [r.verdict, r.layer]),
      cases.map(() => ['block', 'dlp']),
    );
  } finally {
    await f.close();
  }
});

test('a bound secret reaches its allowed destination and is blocked to another allowed one, in every spelling', async () => {
  const f = await fixture();
  try {
    const allowed = await send(f, `https://api.example.test:${f.origin.port}/user`, [
      '-H',
      `Authorization: Bearer ${AGENT_TOKEN}`,
    ]);
    assert.equal(allowed.status, 200, allowed.body);
    const seen = JSON.parse(allowed.body) as { headers: Record<string, string> };
    assert.equal(seen.headers.authorization, `Bearer ${AGENT_TOKEN}`);

    const other = `https://uploads.example.test:${f.origin.port}/upload`;
    const leaks = [
      [
        ['-H', `Authorization: Bearer ${AGENT_TOKEN}`],
        'secret:AGENT_TOKEN in the header Authorization',
      ],
      [
        ['--data-binary', Buffer.from(AGENT_TOKEN).toString('base64')],
        'secret:AGENT_TOKEN in the body',
      ],
      [
        ['--data-binary', Buffer.from(AGENT_TOKEN).toString('hex')],
        'secret:AGENT_TOKEN in the body',
      ],
      [['--data-binary', `key=${encodeURIComponent(DEPLOY_KEY)}`], 'secret:DEPLOY_KEY in the body'],
      [['-u', `bot:${DEPLOY_KEY}`], 'secret:DEPLOY_KEY in the header Authorization'],
      // Inside larger encoded blobs: an environment dump the way `env | base64` wraps it, and
      // a Basic-style pair in a header of its own.
      [
        [
          '--data-binary',
          (
            Buffer.from(
              `PATH=/usr/bin:/bin\nHOME=/home/agent\nAGENT_TOKEN=${AGENT_TOKEN}\nLANG=C\n`,
            )
              .toString('base64')
              .match(/.{1,76}/g) ?? []
          ).join('\n'),
        ],
        'secret:AGENT_TOKEN in the body (base64-decoded)',
      ],
      // A file committed the way a contents API takes it: base64 wrapped at 76 as `base64`
      // writes it, in a JSON string after its key, the token across the first line break.
      [
        [
          '--data-binary',
          JSON.stringify({
            message: 'update',
            content: (
              Buffer.from(`# deploy settings, ${'x'.repeat(24)}\nAGENT_TOKEN=${AGENT_TOKEN}\n`)
                .toString('base64')
                .match(/.{1,76}/g) ?? []
            ).join('\n'),
          }),
        ],
        'secret:AGENT_TOKEN in the body (base64-decoded)',
      ],
      [
        ['-H', `X-Auth: ${Buffer.from(`bot:${AGENT_TOKEN}`).toString('base64')}`],
        'secret:AGENT_TOKEN in the header X-Auth (base64-decoded)',
      ],
    ] as const;
    for (const [args, reason] of leaks) {
      const answer = await send(f, other, args);
      assert.equal(answer.status, 403, answer.body);
      assert.equal(answer.body, `blocked: DLP match: ${reason}\n`);
    }
    // Without the secret the same destination is fine: it is intercepted, not refused.
    const clean = await send(f, other, ['--data-binary', 'hello']);
    assert.equal(clean.status, 200, clean.body);
    assert.equal(f.origin.hits, 2);
    const inner = await records(f);
    assert.equal(inner.length, 2 + leaks.length);
    assert.ok(inner.every((r) => r.transport === 'intercept'));
  } finally {
    await f.close();
  }
});

test('plain HTTP to a destination a bound secret may not reach is scanned too', async () => {
  const f = await fixture();
  try {
    const answer = await send(f, `http://uploads.example.test:${f.plain.port}/form`, [
      '--data-binary',
      `token=${AGENT_TOKEN}`,
    ]);
    assert.equal(answer.status, 403);
    assert.equal(answer.body, 'blocked: DLP match: secret:AGENT_TOKEN in the body\n');
    assert.equal(f.plain.hits, 0);
  } finally {
    await f.close();
  }
});

test('an upload refused before it is read is drained: the client that keeps sending gets its 413, and the connection stays usable', async () => {
  const f = await fixture({ maxScanBytes: 64 * 1024 });
  try {
    const host = `api.example.test:${f.plain.port}`;
    const piece = Buffer.alloc(50 * 1024, 0x62);
    // The refusal comes after the headers; the client goes on sending its declared body (no
    // Expect: 100-continue), then asks again on the same connection.
    const { text } = await rawExchange(
      f.proxy.port,
      [
        `POST http://${host}/big HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${4 * piece.length}\r\n\r\n`,
        piece,
        piece,
        piece,
        piece,
        `GET http://${host}/after HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ],
      5_000,
      100,
    );
    const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => match[1]);
    assert.deepEqual(statuses, ['413', '200'], text);
    assert.match(text, /exceeds the scan limit of 65536 bytes/);
    assert.match(text, /"url":"\/after"/);
    assert.equal(f.plain.hits, 1, 'only the second request reached the origin');
  } finally {
    await f.close();
  }
});

test('compressed bodies are scanned after decoding; what cannot be decoded within the limit is refused', async () => {
  const f = await fixture({ maxScanBytes: 64 * 1024 });
  try {
    const url = `https://api.example.test:${f.origin.port}/x`;
    const gzipped = gzipSync(JSON.stringify({ token: GITHUB_TOKEN }));
    const cases = [
      [gzipped, 'gzip', 403, /github-token in the body/],
      [
        gzipSync(Buffer.alloc(1024 * 1024, 0x61)),
        'gzip',
        403,
        /gzip-decoded body exceeds the scan limit of 65536 bytes/,
      ],
      [Buffer.from('opaque'), 'zstd', 403, /cannot scan a body with Content-Encoding zstd/],
      [
        [1, 2, 3, 4, 5].reduce((layered) => gzipSync(layered), Buffer.from('{}')),
        'gzip, gzip, gzip, gzip, gzip',
        403,
        /5 content codings; at most 4 are undone for scanning/,
      ],
      [Buffer.alloc(100 * 1024, 0x62), undefined, 413, /exceeds the scan limit of 65536 bytes/],
    ] as const;
    for (const [body, encoding, status, reason] of cases) {
      const dir = tempDir('pe-body-');
      const file = join(dir, 'body');
      writeFileSync(file, body);
      const answer = await send(f, url, [
        '--data-binary',
        `@${file}`,
        ...(encoding ? ['-H', `Content-Encoding: ${encoding}`] : []),
      ]);
      cleanup(dir);
      assert.equal(answer.status, status, answer.body);
      assert.equal(answer.layer, 'dlp');
      assert.match(answer.body, reason);
    }
    // Clean gzip passes, forwarded as sent.
    const dir = tempDir('pe-body-');
    writeFileSync(join(dir, 'clean'), gzipSync('{"note":"nothing to see"}'));
    const ok = await send(f, url, [
      '--data-binary',
      `@${join(dir, 'clean')}`,
      '-H',
      'Content-Encoding: gzip',
    ]);
    cleanup(dir);
    assert.equal(ok.status, 200, ok.body);
    assert.ok((JSON.parse(ok.body) as { length: number }).length > 20);
    assert.equal(f.origin.hits, 1);
  } finally {
    await f.close();
  }
});

test('a tls: passthrough destination is tunnelled even though a bound secret may not go there', async () => {
  const f = await fixture();
  try {
    const answer = await curl([
      '--proxy',
      f.proxy.proxyUrl,
      '--cacert',
      pki.caFile,
      `https://passthrough.example.test:${f.origin.port}/`,
    ]);
    assert.equal(answer.code, 0, answer.stderr);
    assert.equal((await records(f)).length, 0);
  } finally {
    await f.close();
  }
});

test('no receipt, log line or verification report carries a secret value', async () => {
  const f = await fixture();
  try {
    const api = `https://api.example.test:${f.origin.port}`;
    const uploads = `https://uploads.example.test:${f.origin.port}`;
    await send(f, `${api}/q?token=${GITHUB_TOKEN}`);
    await send(f, `${uploads}/p/${encodeURIComponent(DEPLOY_KEY)}`);
    await send(f, `${uploads}/x`, ['-H', `X-Key: ${AGENT_TOKEN}`]);
    await send(f, `${uploads}/x`, jsonBody({ deploy: DEPLOY_KEY }));
    await send(f, `${api}/x`, jsonBody({ token: GITHUB_TOKEN }));
    // Blocked for the GitHub token; the bound secret beside it, allowed there, is cut out too.
    await send(f, `${api}/q?mine=${AGENT_TOKEN}&other=${GITHUB_TOKEN}`);
    // Allowed there, so it passes; the receipt still does not hold it, spelled or encoded.
    const allowed = await send(f, `${api}/user?access_token=${AGENT_TOKEN}`);
    assert.equal(allowed.status, 200, allowed.body);
    const encoded = Buffer.from(`bot:${AGENT_TOKEN}\n`).toString('base64url');
    assert.equal((await send(f, `${api}/user?blob=${encoded}`)).status, 200);
    assert.ok(
      f.logged.some((e) => e.target.endsWith('/user?access_token=[REDACTED:secret:AGENT_TOKEN]')),
    );
    await f.proxy.stop();
    const report = join(tempDir('pe-report-'), 'verification-report.json');
    const out: string[] = [];
    const code = await main(
      ['verify', '--receipt-chain', f.proxy.dir, '--allow-unpinned', '--output', report],
      {
        out: (text) => out.push(text),
        err: (text) => out.push(text),
        readFile: (path) => readFile(path),
      },
    );
    assert.equal(code, 0, out.join(''));
    const everything = [
      ...readdirSync(f.proxy.dir).map((name) => readFileSync(join(f.proxy.dir, name), 'utf8')),
      readFileSync(report, 'utf8'),
      out.join(''),
      JSON.stringify(f.logged),
    ].join('\n');
    assert.equal(f.logged.filter((e) => e.layer === 'dlp').length, 6);
    for (const spelling of SECRET_SPELLINGS)
      assert.ok(
        !everything.includes(spelling),
        `a secret spelling leaked: ${spelling.slice(0, 6)}…`,
      );
    const decoded = decodedViews([{ text: everything, where: 'all' }]).map((view) => view.text);
    for (const secret of [GITHUB_TOKEN, AGENT_TOKEN, DEPLOY_KEY])
      assert.ok(!decoded.some((text) => text.includes(secret)), `${secret.slice(0, 6)}… encoded`);
  } finally {
    await f.close();
  }
});

test('a refusal that could quote the request (its path, Host, Expect) leaves no secret in a receipt or log line', async () => {
  const origin = await startHttpsOrigin(echo, pki);
  const logged: DecisionEntry[] = [];
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    upstreamCa: [pki.caCert],
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
    paths: ["/allowed/"]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
secrets:
  - env: AGENT_TOKEN
    allow: ["api.example.test:${origin.port}"]
default_deny: true
`,
    secretValues: { AGENT_TOKEN },
    onDecision: (entry) => logged.push(entry),
  });
  try {
    const api = `https://api.example.test:${origin.port}`;
    const refused = async (args: readonly string[], status: number, layer: string) => {
      const result = await curlTrustingRunCa(proxy, ['-i', ...args]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, status, result.stdout.toString().slice(0, 300));
      assert.equal(response.headers['x-pipelock-egress-block'], layer);
    };
    // The bound secret may go to api.example.test, but not outside its paths.
    await refused([`${api}/elsewhere/${AGENT_TOKEN}`], 403, 'path');
    await refused(
      ['-H', `Host: ${GITHUB_TOKEN.toLowerCase()}.example.test`, `${api}/allowed/x`],
      403,
      'host',
    );
    await refused(['-H', `Expect: ${AGENT_TOKEN}`, `${api}/allowed/x`], 417, 'request');
    await refused(['-H', `Expect: ${GITHUB_TOKEN}`, `${api}/allowed/x`], 417, 'request');
    assert.equal(origin.hits, 0);
    await proxy.stop();
    const recorded = [
      ...readdirSync(proxy.dir).map((name) => readFileSync(join(proxy.dir, name), 'utf8')),
      JSON.stringify(logged),
    ].join('\n');
    assert.ok(logged.some((e) => e.pattern?.includes('[REDACTED:secret:AGENT_TOKEN]')));
    for (const spelling of [...SECRET_SPELLINGS, GITHUB_TOKEN.toLowerCase()])
      assert.ok(!recorded.includes(spelling), `a secret spelling leaked: ${spelling.slice(0, 6)}…`);
  } finally {
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('a bound secret allowed under a URL prefix goes there only: not to other paths of its host, nor out of it by dot segments', async () => {
  const origin = await startHttpsOrigin(echo, pki);
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    upstreamCa: [pki.caCert],
    // Nothing in the rule needs to see inside TLS: the secret's narrower scope does.
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
secrets:
  - env: AGENT_TOKEN
    allow: ["https://api.example.test:${origin.port}/repos/acme/"]
default_deny: true
`,
    secretValues: { AGENT_TOKEN },
  });
  try {
    const api = `https://api.example.test:${origin.port}`;
    const status = async (args: readonly string[]) => {
      const result = await curlTrustingRunCa(proxy, ['-i', '--path-as-is', ...args]);
      const response = parseCurlResponse(result.stdout);
      return `${response.status} ${response.headers['x-pipelock-egress-block'] ?? ''}`.trim();
    };
    assert.equal(await status([`${api}/repos/acme/widgets?t=${AGENT_TOKEN}`]), '200');
    assert.equal(
      await status(['-H', `Authorization: token ${AGENT_TOKEN}`, `${api}/repos/acme/x`]),
      '200',
    );
    assert.equal(origin.hits, 2);
    assert.equal(await status([`${api}/repos/other/x?leak=${AGENT_TOKEN}`]), '403 dlp');
    assert.equal(await status([...jsonBody({ t: AGENT_TOKEN }), `${api}/gists`]), '403 dlp');
    assert.equal(await status([`${api}/repos/acme/../../exfil/${AGENT_TOKEN}`]), '403 dlp');
    assert.equal(
      await status(['-H', `Authorization: token ${AGENT_TOKEN}`, `${api}/gists`]),
      '403 dlp',
    );
    // Routed out of the prefix by a path override header, it may not go either.
    const auth = ['-H', `Authorization: token ${AGENT_TOKEN}`];
    const routed = (path: string) => [...auth, '-H', `X-Original-URL: ${path}`];
    assert.equal(await status([...routed('/gists'), `${api}/repos/acme/x`]), '403 dlp');
    assert.equal(await status([...routed('/repos/acme/y'), `${api}/repos/acme/x`]), '200');
    // Elsewhere on the host, requests without the secret pass as the rule says.
    assert.equal(await status([`${api}/gists`]), '200');
    assert.equal(origin.hits, 4);
  } finally {
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('bodies held for scanning share one budget: beyond it a request is refused 503, and the budget comes back', async () => {
  const f = await fixture({ maxScanBytes: 64 * 1024, maxScanBufferBytes: 100 * 1024 });
  try {
    const url = `http://api.example.test:${f.plain.port}/upload`;
    // A first upload, held half-sent: 50 KiB of the budget stay taken.
    const slow = connect({ host: '127.0.0.1', port: f.proxy.port });
    await once(slow, 'connect');
    slow.write(
      `POST ${url} HTTP/1.1\r\nHost: api.example.test:${f.plain.port}\r\nContent-Length: ${60 * 1024}\r\n\r\n`,
    );
    slow.write(Buffer.alloc(50 * 1024, 0x61));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await send(f, url, ['--data-binary', 'x'.repeat(60 * 1024)]);
    assert.equal(second.status, 503, second.body);
    assert.equal(second.layer, 'limit');
    assert.match(second.body, /too many request bodies are being held for scanning/);
    // The first completes and passes; its bytes are given back.
    const answer = new Promise<string>((resolve) => {
      let text = '';
      slow.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    slow.write(Buffer.alloc(10 * 1024, 0x61));
    assert.match(await answer, /^HTTP\/1\.1 200 /);
    slow.destroy();
    const third = await send(f, url, ['--data-binary', 'y'.repeat(60 * 1024)]);
    assert.equal(third.status, 200, third.body);
    assert.equal(f.plain.hits, 2);
  } finally {
    await f.close();
  }
});
