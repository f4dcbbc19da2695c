import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import {
  assertNoViolations,
  assertValid,
  cleanup,
  curl,
  decisions,
  echo,
  ReceiptWitness,
  parseCurlResponse,
  rawExchange,
  readEvidenceDir,
  startEngine,
  startOrigin,
  statusOf,
  tempDir,
  type EngineSetup,
  type Origin,
  type RunningEngine,
  runCa,
  sealedRecords,
  waitFor,
} from './helpers.js';
import type { Receipt } from '../../src/receipts/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Fixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  /** Requests whose receipt was not yet in the evidence file when they reached the origin. */
  readonly early: string[];
  /** Tokens checked by the origin against the evidence file. */
  readonly checked: string[];
  close(): Promise<void>;
}

/**
 * An origin on 127.0.0.1 that, for every request naming /r/<token>, first checks that the
 * request's receipt is already in the evidence file; and an engine in front of it.
 */
async function fixture(
  policy: (originPort: number) => string,
  handler: Handler = echo,
  setup: Omit<EngineSetup, 'policy'> = {},
): Promise<Fixture> {
  const witness = new ReceiptWitness();
  const origin = await startOrigin((req, res) => {
    witness.saw(req.url);
    handler(req, res);
  });
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1', 'strict.example.test': '127.0.0.1' },
    ...setup,
    policy: policy(origin.port),
  });
  witness.follow(proxy.dir);
  return {
    origin,
    proxy,
    early: witness.early,
    checked: witness.checked,
    async close() {
      await proxy.stop();
      await origin.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
}

const basicPolicy = (port: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "strict.example.test"
    ports: [${port}]
    methods: ["GET"]
    paths: ["/r/"]
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`;

function token(): string {
  return randomUUID();
}

function receiptsFor(dir: string, needle: string): Receipt[] {
  return decisions(readEvidenceDir(dir, false).receipts).filter((r) =>
    r.action_record.target.includes(needle),
  );
}

function proxyAgent(proxy: RunningEngine): ProxyAgent {
  return new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
}

async function expectBlocked(
  f: Fixture,
  url: string,
  layer: string,
  method = 'GET',
  reason?: RegExp,
): Promise<void> {
  const result = await curl(['-i', '-X', method, '--proxy', f.proxy.proxyUrl, url]);
  assert.equal(result.code, 0, result.stderr);
  const response = parseCurlResponse(result.stdout);
  assert.equal(response.status, 403, response.body.toString());
  assert.match(response.headers['content-type'] ?? '', /^text\/plain/);
  assert.equal(response.headers['x-pipelock-egress-block'], layer);
  assert.match(response.body.toString(), /^blocked: /);
  if (reason) assert.match(response.body.toString(), reason);
  assert.equal(f.origin.hits, 0, 'the origin was reached');
  await f.proxy.stop();
  const evidence = readEvidenceDir(f.proxy.dir);
  assertValid(evidence, true);
  const [receipt, ...more] = decisions(evidence.receipts);
  assert.equal(more.length, 0, 'one receipt for one request');
  assert.equal(receipt?.action_record.verdict, 'block');
  assert.equal(receipt?.action_record.layer, layer);
  assert.equal(receipt?.action_record.method, method);
  assert.equal(receipt?.action_record.transport, 'forward');
  assert.match(receipt?.action_record.pattern ?? '', /./);
}

test('an allowed GET through curl passes, after its receipt is in the evidence file', async () => {
  const f = await fixture(basicPolicy);
  try {
    const id = token();
    const url = `http://api.example.test:${f.origin.port}/r/${id}?q=1`;
    const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, url]);
    assert.equal(result.code, 0, result.stderr);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as {
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(seen.url, `/r/${id}?q=1`);
    assert.equal(seen.headers.host, `api.example.test:${f.origin.port}`);
    assert.deepEqual(f.checked, [id]);
    assert.deepEqual(f.early, []);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    const [receipt, ...more] = decisions(evidence.receipts);
    assert.equal(more.length, 0);
    const record = receipt?.action_record;
    assert.equal(record?.verdict, 'allow');
    assert.equal(record?.transport, 'forward');
    assert.equal(record?.method, 'GET');
    assert.equal(record?.action_type, 'read');
    assert.equal(record?.side_effect_class, 'external_read');
    assert.equal(record?.reversibility, 'full');
    assert.equal(record?.target, url);
    assert.equal(record?.actor, 'engine-test');
    assert.equal(record?.request_id, 'req-1');
    assert.equal(record?.decision_phase, 'intent');
    assert.match(record?.run_nonce ?? '', /^[0-9a-f]{32}$/);
    assert.equal(record?.policy_hash, evidence.report.policy_hashes[0]);
    assertNoViolations();
  } finally {
    await f.close();
  }
});

test('8 MiB streams both ways through Node (undici ProxyAgent): chunked upload, download', async () => {
  const size = 8 * 1024 * 1024;
  const download = randomBytes(size);
  const f = await fixture(basicPolicy, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      res.writeHead(200, {
        'x-upload-sha256': hash.digest('hex'),
        'x-upload-length': String(length),
        'x-upload-te': String(req.headers['transfer-encoding']),
      });
      // Stream the download in pieces (chunked response).
      let at = 0;
      const pump = () => {
        while (at < download.length) {
          const piece = download.subarray(at, at + 256 * 1024);
          at += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
  });
  const agent = proxyAgent(f.proxy);
  try {
    const upload = randomBytes(size);
    const id = token();
    const pieces = Array.from({ length: 32 }, (_, i) =>
      upload.subarray(i * (size / 32), (i + 1) * (size / 32)),
    );
    const response = await request(`http://api.example.test:${f.origin.port}/r/${id}`, {
      method: 'POST',
      body: Readable.from(pieces),
      dispatcher: agent,
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-upload-te'], 'chunked');
    assert.equal(response.headers['x-upload-length'], String(size));
    assert.equal(
      response.headers['x-upload-sha256'],
      createHash('sha256').update(upload).digest('hex'),
    );
    const body = Buffer.from(await response.body.arrayBuffer());
    assert.equal(body.length, size);
    assert.ok(body.equals(download), 'the download arrived intact');
    assert.deepEqual(f.early, []);
    await f.proxy.stop();
    const [receipt] = decisions(readEvidenceDir(f.proxy.dir).receipts);
    assert.equal(receipt?.action_record.method, 'POST');
    assert.equal(receipt?.action_record.action_type, 'write');
    assert.equal(receipt?.action_record.side_effect_class, 'external_write');
  } finally {
    await agent.close();
    await f.close();
  }
});

test('an 8 MiB fixed-length curl upload and a 1-byte body arrive intact', async () => {
  const f = await fixture(basicPolicy, echo);
  const dir = tempDir();
  try {
    const upload = randomBytes(8 * 1024 * 1024);
    const file = join(dir, 'upload.bin');
    writeFileSync(file, upload);
    const big = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '--data-binary',
      `@${file}`,
      '-H',
      'Content-Type: application/octet-stream',
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    const bigSeen = JSON.parse(parseCurlResponse(big.stdout).body.toString()) as {
      length: number;
      headers: Record<string, string>;
    };
    assert.equal(bigSeen.length, upload.length);
    assert.equal(bigSeen.headers['content-length'], String(upload.length));
    const one = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '--data-binary',
      'x',
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    const oneSeen = JSON.parse(parseCurlResponse(one.stdout).body.toString()) as {
      length: number;
      method: string;
    };
    assert.deepEqual([oneSeen.method, oneSeen.length], ['POST', 1]);
    assert.equal(f.checked.length, 2);
    assert.deepEqual(f.early, []);
  } finally {
    cleanup(dir);
    await f.close();
  }
});

test('a disallowed destination is refused with 403 and a destination receipt', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(
      f,
      `http://other.example.test:${f.origin.port}/r/${token()}`,
      'destination',
      'GET',
      /no egress rule allows other\.example\.test/,
    );
  } finally {
    await f.close();
  }
});

test('a disallowed port is refused with 403 and a port receipt', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(f, `http://api.example.test:1/r/${token()}`, 'port');
  } finally {
    await f.close();
  }
});

test('a disallowed path is refused with 403 and a path receipt', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(f, `http://strict.example.test:${f.origin.port}/admin/${token()}`, 'path');
  } finally {
    await f.close();
  }
});

test('a path parameter escape (/r/..;/admin, as Tomcat routes it) is refused as a path block', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(f, `http://strict.example.test:${f.origin.port}/r/..;/admin`, 'path');
  } finally {
    await f.close();
  }
});

test('an encoded path escape is refused as a path block', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(f, `http://strict.example.test:${f.origin.port}/r/%2e%2e/admin`, 'path');
  } finally {
    await f.close();
  }
});

test('a disallowed method is refused with 403 and a method receipt', async () => {
  const f = await fixture(basicPolicy);
  try {
    await expectBlocked(
      f,
      `http://strict.example.test:${f.origin.port}/r/${token()}`,
      'method',
      'DELETE',
    );
  } finally {
    await f.close();
  }
});

/** api.example.test takes GET and POST only: what a request asks to be taken for is judged. */
const getOrPostPolicy = (mode: 'enforce' | 'audit') => (port: number) => `version: "1.0"
mode: ${mode}
egress:
  - destination: "api.example.test"
    ports: [${port}]
    methods: ["GET", "POST"]
  - destination: "127.0.0.1"
    ports: [${port}]
`;

test('a POST asking for another method in its `_method` query parameter is judged as that method', async () => {
  const f = await fixture(getOrPostPolicy('enforce'));
  try {
    const post = async (query: string) => {
      const url = `http://api.example.test:${f.origin.port}/items/7${query}`;
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, '--data', 'a=1', url]);
      const response = parseCurlResponse(result.stdout);
      return [response.status, response.body.toString()] as const;
    };
    const [status, body] = await post('?x=1&_method=delete');
    assert.equal(status, 403);
    assert.match(body, /^blocked: the query parameter _method asks for DELETE: method DELETE/);
    assert.equal((await post('?%5Fmethod=PUT'))[0], 403);
    // PHP reads `.` (and a leading space) in a name as `_`: Laravel and Symfony see `_method`.
    assert.equal((await post('?.method=DELETE'))[0], 403);
    assert.equal((await post('?+.method=DELETE'))[0], 403);
    // PHP ends a name at a NUL.
    assert.equal((await post('?_method%00=DELETE'))[0], 403);
    assert.equal(f.origin.hits, 0);
    assert.equal((await post('?_method=POST'))[0], 200);
    assert.equal((await post(''))[0], 200);
    // A GET's `_method` is no override anywhere: it is a query like any other.
    const url = `http://api.example.test:${f.origin.port}/items?_method=delete`;
    const get = await curl(['-i', '--proxy', f.proxy.proxyUrl, url]);
    assert.equal(parseCurlResponse(get.stdout).status, 200);
    assert.equal(f.origin.hits, 3);
  } finally {
    await f.close();
  }
});

test('a POST whose form, multipart or JSON body asks for another method (`_method`) is judged as that method', async () => {
  const f = await fixture(getOrPostPolicy('enforce'), echo, { limits: { maxScanBytes: 4096 } });
  const dir = tempDir('body-method-');
  try {
    const url = `http://api.example.test:${f.origin.port}/items/7`;
    const post = async (args: readonly string[]) => {
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, ...args, url]);
      const response = parseCurlResponse(result.stdout);
      return [response.status, response.body.toString()] as const;
    };
    const gzipped = join(dir, 'form.gz');
    writeFileSync(gzipped, gzipSync('a=1&_method=DELETE'));
    // PHP, Laravel and Symfony read a body as sent: this gzip header's file name (FNAME) is
    // their `_method`, its decoded body `a=b`.
    const named = join(dir, 'named.gz');
    const plain = gzipSync('a=b');
    const header = [plain.subarray(0, 3), Buffer.from([0x08]), plain.subarray(4, 10)];
    writeFileSync(
      named,
      Buffer.concat([...header, Buffer.from('&_method=DELETE&\0'), plain.subarray(10)]),
    );
    for (const args of [
      ['--data', 'title=x&_method=delete'],
      ['-H', 'Content-Type:', '--data-binary', '_method=delete'],
      ['-F', 'title=x', '-F', '_method=delete'],
      ['-H', 'Content-Type: application/json', '--data', '{"_method":"DELETE"}'],
      ['-H', 'Content-Encoding: gzip', '--data-binary', `@${gzipped}`],
      ['-H', 'Content-Encoding: gzip', '--data-binary', `@${named}`],
      // PHP's names for `.method` and `_method%00`; the types Rack cuts at `,` or reads as
      // multipart (as a form without a boundary); JSON wherever Laravel finds `/json` in the
      // header.
      ['--data', 'title=x&.method=delete'],
      ['--data', 'title=x&_method%00=delete'],
      [
        '-H',
        'Content-Type: application/x-www-form-urlencoded,text/plain',
        '--data',
        '_method=delete',
      ],
      ['-H', 'Content-Type: multipart/mixed', '--data', '_method=delete'],
      // Rack drops the tab before the `;`.
      [
        '-H',
        'Content-Type: application/x-www-form-urlencoded\t;charset=utf-8',
        '--data',
        '_method=delete',
      ],
      ['-H', 'Content-Type: text/plain;x=/json', '--data', '{"_method":"DELETE"}'],
      ['-H', 'Content-Type: application/json-seq', '--data', '{"_method":"DELETE"}'],
      // Judged by the Content-Type the origin gets: a Connection header names this one away,
      // and Rack reads a POST without one as a form.
      [
        '-H',
        'Connection: content-type',
        '-H',
        'Content-Type: application/octet-stream',
        '--data-binary',
        '_method=delete',
      ],
    ]) {
      const [status, body] = await post(args);
      assert.equal(status, 403, args.join(' '));
      assert.match(body, /^blocked: the body field _method asks for DELETE: method DELETE/);
    }
    // Two Content-Types: node:http keeps the first, an origin may read the other.
    const twoTypes = ['-H', 'Content-Type: application/octet-stream'];
    const [ambiguous, reason] = await post([
      ...twoTypes,
      ...['-H', 'Content-Type: application/x-www-form-urlencoded', '--data', '_method=delete'],
    ]);
    assert.equal(ambiguous, 400);
    assert.equal(reason, 'blocked: the request has 2 Content-Type headers: send one\n');
    assert.equal(f.origin.hits, 0);
    // Read, then forwarded whole: a form without `_method`, one that names an allowed method.
    const [ok, echoed] = await post(['--data', `title=${'x'.repeat(3000)}&_method=post`]);
    assert.equal(ok, 200);
    assert.equal(JSON.parse(echoed).length, 3019);
    // Bodies no framework reads `_method` from stream through unread, whatever their size.
    const big = ['-H', 'Content-Type: application/octet-stream', '--data-binary', `@${gzipped}`];
    assert.equal((await post(big))[0], 200);
    const [tooLarge, why] = await post(['--data', `a=${'x'.repeat(5000)}`]);
    assert.equal(tooLarge, 413);
    assert.match(
      why,
      /^blocked: the request body exceeds 4096 bytes: a POST body that may name another method/,
    );
    assert.equal(f.origin.hits, 2);
  } finally {
    await f.close();
  }
  // Audit mode: the method it asks for is a warning, and the request passes.
  const audit = await fixture(getOrPostPolicy('audit'));
  try {
    const result = await curl([
      '-i',
      '--proxy',
      audit.proxy.proxyUrl,
      '--data',
      '_method=delete',
      `http://api.example.test:${audit.origin.port}/items/7`,
    ]);
    assert.equal(parseCurlResponse(result.stdout).status, 200);
    await audit.proxy.stop();
    const [receipt] = receiptsFor(audit.proxy.dir, '/items/7');
    assert.equal(receipt?.action_record.verdict, 'warn');
    assert.match(receipt?.action_record.pattern ?? '', /the body field _method asks for DELETE/);
  } finally {
    await audit.close();
  }
});

test('a multipart body frameworks may read differently is refused where some method is refused; plain ones are read', async () => {
  const f = await fixture(getOrPostPolicy('enforce'));
  const dir = tempDir('multipart-method-');
  try {
    const post = async (host: string, args: readonly string[]) => {
      const url = `http://${host}:${f.origin.port}/items/7`;
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, ...args, url]);
      return parseCurlResponse(result.stdout);
    };
    let files = 0;
    const body = (type: string, text: string) => {
      const path = join(dir, `body-${(files += 1)}`);
      writeFileSync(path, text, 'latin1');
      return ['-H', `Content-Type: ${type}`, '--data-binary', `@${path}`];
    };
    const part = (headers: string) => `--AAA\r\n${headers}\r\n\r\nDELETE\r\n--AAA--\r\n`;
    const method = part('Content-Disposition: form-data; name="_method"');
    // Each is a DELETE to Rack or PHP: a boundary Rack and PHP find elsewhere, a name Rack
    // unescapes or PHP unquotes, and LF line ends PHP takes.
    const unplain = [
      body('multipart/form-data, boundary=AAA', method),
      body('multipart/form-data; xboundary=AAA', method),
      body(
        'multipart/form-data; boundary=AAA',
        part('Content-Disposition: form-data; name="_\\method"'),
      ),
      body(
        'multipart/form-data; boundary=AAA',
        part("Content-Disposition: form-data; name='_method'"),
      ),
      body('multipart/form-data; boundary=AAA', method.replaceAll('\r\n', '\n')),
    ];
    for (const args of unplain) {
      const response = await post('api.example.test', args);
      assert.equal(response.status, 403, args.join(' '));
      assert.equal(response.headers['x-pipelock-egress-block'], 'method');
      assert.match(
        response.body.toString(),
        /^blocked: the multipart body is not plain enough to know which method \(_method\) frameworks take it for, and some method is refused here: send it plain/,
      );
    }
    // Rack's name for a part without a Content-Disposition is its Content-ID.
    const byId = await post(
      'api.example.test',
      body('multipart/related; boundary=AAA', part('Content-ID: _method')),
    );
    assert.equal(byId.status, 403);
    assert.match(byId.body.toString(), /^blocked: the body field _method asks for DELETE/);
    assert.equal(f.origin.hits, 0);
    // Where every method is allowed, no body is read for one.
    assert.equal((await post('127.0.0.1', unplain[0] ?? [])).status, 200);
    // curl -F with a file, and a Google Drive style multipart/related upload, are plain.
    const upload = join(dir, 'upload.txt');
    writeFileSync(upload, 'line 1\r\n\r\n--line 2\r\n');
    const form = ['-F', 'title=x', '-F', `file=@${upload}`];
    assert.equal((await post('api.example.test', form)).status, 200);
    const drive = [
      '--foo_bar_baz\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{"name":"a.jpg"}\r\n',
      '--foo_bar_baz\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0\r\n--foo_bar_baz--\r\n',
    ].join('');
    const related = body('multipart/related; boundary=foo_bar_baz', drive);
    assert.equal((await post('api.example.test', related)).status, 200);
    assert.equal(f.origin.hits, 3);
  } finally {
    await f.close();
  }
});

test('a method-override header is judged as the method it asks for', async () => {
  const f = await fixture(basicPolicy);
  try {
    const url = `http://strict.example.test:${f.origin.port}/r/${token()}`;
    const ask = async (header: string) => {
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, '-H', header, url]);
      const response = parseCurlResponse(result.stdout);
      return [response.status, response.body.toString()] as const;
    };
    for (const header of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      const [status, body] = await ask(`${header}: delete`);
      assert.equal(status, 403, header);
      assert.match(
        body,
        new RegExp(
          `^blocked: ${header.toLowerCase()} asks for DELETE: method DELETE is not allowed by egress\\[1\\]`,
        ),
      );
    }
    // A repeated header arrives joined with commas: each method is judged.
    const [status, body] = await ask('X-HTTP-Method-Override: GET, DELETE');
    assert.equal(status, 403);
    assert.match(body, /^blocked: x-http-method-override asks for DELETE: method DELETE/);
    assert.equal((await ask('X-HTTP-Method-Override: GET'))[0], 200);
    // CGI and PHP read `_` in a header name as `-`.
    const [underscored, why] = await ask('X_HTTP_METHOD_OVERRIDE: DELETE');
    assert.equal(underscored, 403);
    assert.match(why, /^blocked: x_http_method_override asks for DELETE: method DELETE/);
    assert.equal(f.origin.hits, 1);
  } finally {
    await f.close();
  }
});

test('a path-override header is judged as the path it routes the request to', async () => {
  const seen: string[] = [];
  const f = await fixture(basicPolicy, (req, res) => {
    seen.push(`${req.url ?? ''} ${String(req.headers['x-original-url'])}`);
    echo(req, res);
  });
  try {
    const id = token();
    const url = `http://strict.example.test:${f.origin.port}/r/${id}`;
    const ask = async (...headers: string[]) => {
      const options = headers.flatMap((header) => ['-H', header]);
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, ...options, url]);
      const response = parseCurlResponse(result.stdout);
      return [response.status, response.body.toString()] as const;
    };
    // IIS rewrite setups, Symfony before 5 and Zend take these as the path; CGI reads _ as -.
    for (const header of ['X-Original-URL', 'X-Rewrite-URL', 'x_original_url']) {
      const [status, body] = await ask(`${header}: /admin`);
      assert.equal(status, 403, header);
      assert.match(
        body,
        new RegExp(`^blocked: ${header} routes it to /admin: path /admin is outside`),
      );
    }
    // An absolute URL's path and query are what such a server routes by.
    const [absolute, why] = await ask('X-Rewrite-URL: http://strict.example.test/admin?x=1');
    assert.equal(absolute, 403);
    assert.match(why, /^blocked: X-Rewrite-URL routes it to \/admin\?x=1: path \/admin is outside/);
    // Each method it may be taken for, at each path it may be routed to.
    const [both, bothWhy] = await ask('X-HTTP-Method-Override: DELETE', 'X-Original-URL: /r/x');
    assert.equal(both, 403);
    assert.match(bothWhy, /^blocked: x-http-method-override asks for DELETE: method DELETE/);
    // Neither a path nor a URL, or sent twice: servers would read them in ways no rule judges.
    const [notPath, notPathWhy] = await ask('X-Original-URL: admin');
    assert.equal(notPath, 400);
    assert.match(
      notPathWhy,
      /^blocked: X-Original-URL must be a path \(\/…\) or an absolute http\(s\) URL/,
    );
    const [twice, twiceWhy] = await ask('X-Original-URL: /r/a', 'X_Original_URL: /r/b');
    assert.equal(twice, 400);
    assert.match(twiceWhy, /^blocked: X_Original_URL is sent more than once/);
    // Sent on as spelled: a dot segment would be judged resolved and read by some as spelled.
    const [dotted, dottedWhy] = await ask('X-Original-URL: /r/x/%2e%2e/y');
    assert.equal(dotted, 400);
    assert.match(dottedWhy, /^blocked: the X-Original-URL header: the path holds a dot segment/);
    assert.equal(f.origin.hits, 0);
    // A path the rule allows passes, and the request still goes to its own path.
    assert.equal((await ask('X-Original-URL: /r/elsewhere'))[0], 200);
    assert.deepEqual(seen, [`/r/${id} /r/elsewhere`]);
    await f.proxy.stop();
    const blocks = receiptsFor(f.proxy.dir, id).filter((r) => r.action_record.verdict === 'block');
    assert.deepEqual(
      blocks.map((r) => r.action_record.layer),
      ['path', 'path', 'path', 'path', 'method', 'request', 'request', 'request'],
    );
  } finally {
    await f.close();
  }
});

test('a path-override header is judged by the rule naming the address too', async () => {
  const f = await fixture(
    (port) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "127.0.0.1"
    ports: [${port}]
    paths: ["/r/"]
`,
  );
  try {
    const url = `http://api.example.test:${f.origin.port}/r/${token()}`;
    const ask = async (header: string) => {
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, '-H', header, url]);
      return parseCurlResponse(result.stdout);
    };
    const routed = await ask('X-Original-URL: /admin');
    assert.equal(routed.status, 403);
    assert.equal(routed.headers['x-pipelock-egress-block'], 'ssrf');
    assert.equal(f.origin.hits, 0);
    assert.equal((await ask('X-Original-URL: /r/ok')).status, 200);
  } finally {
    await f.close();
  }
});

test('a `_method` body is read where a path the request is routed to, or a rule naming its address, refuses a method', async () => {
  const routedPolicy = (port: number) => `version: "1.0"
egress:
  - destination: "http://api.example.test:${port}/public/"
  - destination: "api.example.test"
    ports: [${port}]
    methods: [GET, POST]
    paths: ["/r/"]
  - destination: "127.0.0.1"
    ports: [${port}]
`;
  const addressPolicy = (port: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "127.0.0.1"
    ports: [${port}]
    methods: [GET, POST]
`;
  for (const [policy, path, headers, layer] of [
    [routedPolicy, '/public/x', ['-H', 'X-Original-URL: /r/x'], 'method'],
    [addressPolicy, `/r/${token()}`, [], 'ssrf'],
  ] as const) {
    const f = await fixture(policy);
    try {
      const url = `http://api.example.test:${f.origin.port}${path}`;
      const post = async (body: string) =>
        parseCurlResponse(
          (await curl(['-i', '--proxy', f.proxy.proxyUrl, ...headers, '--data', body, url])).stdout,
        );
      for (const body of ['_method=DELETE', 'title=x&_method=delete']) {
        const refused = await post(body);
        assert.equal(refused.status, 403, `${layer}: ${body}`);
        assert.equal(refused.headers['x-pipelock-egress-block'], layer);
        assert.match(
          refused.body.toString(),
          layer === 'ssrf' ? /^blocked: SSRF blocked/ : /the body field _method asks for DELETE/,
        );
      }
      assert.equal(f.origin.hits, 0);
      assert.equal((await post('title=x')).status, 200);
    } finally {
      await f.close();
    }
  }
});

test('a path the request is routed to that is scanned has the request scanned; the URL it routes by is scanned as a URL', async () => {
  const f = await fixture(
    (port) => `version: "1.0"
egress:
  - destination: "http://api.example.test:${port}/public/"
  - destination: "http://api.example.test:${port}/r/"
    scan: true
  - destination: "127.0.0.1"
    ports: [${port}]
`,
  );
  try {
    const url = `http://api.example.test:${f.origin.port}/public/x`;
    const credential = `ghp_${'Zq3Rt7Yp1W'.repeat(3)}k9Lm2N`;
    const ask = async (...headers: string[]) => {
      const options = headers.flatMap((header) => ['-H', header]);
      const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, ...options, url]);
      return parseCurlResponse(result.stdout);
    };
    const scanned = await ask('X-Original-URL: /r/x', `X-Token: ${credential}`);
    assert.equal(scanned.status, 403);
    assert.equal(scanned.headers['x-pipelock-egress-block'], 'dlp');
    const inRoute = await ask('X-Rewrite-URL: /public/y?password=hunter2hunter2');
    assert.equal(inRoute.status, 403);
    assert.match(
      inRoute.body.toString(),
      /^blocked: DLP match: credential-in-url in the X-Rewrite-URL header/,
    );
    assert.equal(f.origin.hits, 0);
    // Not routed to the scanned path, the unscanned one's request passes as it is.
    assert.equal((await ask(`X-Token: ${credential}`)).status, 200);
    await f.proxy.stop();
    const recorded = readdirSync(f.proxy.dir)
      .map((name) => readFileSync(join(f.proxy.dir, name), 'utf8'))
      .join('');
    assert.ok(!recorded.includes('hunter2hunter2'));
  } finally {
    await f.close();
  }
});

test('a rule naming the address a name resolves to with scan: true has plain requests through the name scanned', async () => {
  const f = await fixture(
    (port) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "127.0.0.1"
    ports: [${port}]
    scan: true
`,
  );
  try {
    const url = `http://api.example.test:${f.origin.port}/r/${token()}`;
    const credential = `ghp_${'Zq3Rt7Yp1W'.repeat(3)}k9Lm2N`;
    const ask = async (...args: string[]) =>
      parseCurlResponse((await curl(['-i', '--proxy', f.proxy.proxyUrl, ...args, url])).stdout);
    const inHeader = await ask('-H', `X-Token: ${credential}`);
    assert.equal(inHeader.status, 403);
    assert.equal(inHeader.headers['x-pipelock-egress-block'], 'dlp');
    assert.equal((await ask('--data', `t=${credential}`)).status, 403);
    assert.equal(f.origin.hits, 0);
    assert.equal((await ask()).status, 200);
  } finally {
    await f.close();
  }
});

test('audit mode: a path-override header warns, and the request goes to its own path', async () => {
  const seen: string[] = [];
  const f = await fixture(
    (port) => `version: "1.0"
mode: audit
egress:
  - destination: "api.example.test"
    ports: [${port}]
    paths: ["/r/"]
  - destination: "127.0.0.1"
    ports: [${port}]
`,
    (req, res) => {
      seen.push(req.url ?? '');
      echo(req, res);
    },
  );
  try {
    const id = token();
    const url = `http://api.example.test:${f.origin.port}/r/${id}`;
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '-H',
      'X-Original-URL: /admin',
      url,
    ]);
    assert.equal(parseCurlResponse(result.stdout).status, 200);
    assert.deepEqual(seen, [`/r/${id}`]);
    await f.proxy.stop();
    const [receipt] = receiptsFor(f.proxy.dir, id);
    assert.equal(receipt?.action_record.verdict, 'warn');
    assert.match(receipt?.action_record.pattern ?? '', /X-Original-URL routes it to \/admin/);
  } finally {
    await f.close();
  }
});

test('the strict rule still allows its method and path', async () => {
  const f = await fixture(basicPolicy);
  const agent = proxyAgent(f.proxy);
  try {
    const response = await request(`http://strict.example.test:${f.origin.port}/r/${token()}`, {
      dispatcher: agent,
    });
    assert.equal(response.statusCode, 200);
    await response.body.dump();
    assert.equal(f.origin.hits, 1);
  } finally {
    await agent.close();
    await f.close();
  }
});

const noLoopbackRule = (port: number) => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
  - destination: "internal.example.test"
    ports: [${port}]
default_deny: true
`;

for (const address of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '::1', '::ffff:127.0.0.1']) {
  test(`a name pinned to ${address} without a rule naming it is blocked by the SSRF guard`, async () => {
    const f = await fixture(noLoopbackRule, echo, { pins: { 'internal.example.test': address } });
    try {
      await expectBlocked(
        f,
        `http://internal.example.test:${f.origin.port}/r/${token()}`,
        'ssrf',
        'GET',
        /SSRF blocked: internal\.example\.test resolves to/,
      );
    } finally {
      await f.close();
    }
  });
}

test('a name pinned to 127.0.0.1 passes when a rule names 127.0.0.1', async () => {
  const f = await fixture(basicPolicy);
  try {
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    assert.equal(parseCurlResponse(result.stdout).status, 200);
    assert.equal(f.origin.hits, 1);
    assert.deepEqual(f.early, []);
  } finally {
    await f.close();
  }
});

const openPolicy = `version: "1.0"
egress:
  - destination: "api.example.test"
default_deny: false
`;

for (const literal of [
  '2130706433',
  '0x7f000001',
  '0177.0.0.1',
  '127.1',
  '[::ffff:7f00:1]',
  '[::1]',
]) {
  test(`the IP literal ${literal} is blocked by the SSRF guard unless named`, async () => {
    const f = await fixture(() => openPolicy);
    try {
      await expectBlocked(f, `http://${literal}:${f.origin.port}/r/${token()}`, 'ssrf');
    } finally {
      await f.close();
    }
  });
}

test('a decimal IP literal reaches the origin when a rule names 127.0.0.1', async () => {
  const f = await fixture(basicPolicy);
  try {
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      `http://2130706433:${f.origin.port}/r/${token()}`,
    ]);
    assert.equal(parseCurlResponse(result.stdout).status, 200);
    assert.equal(f.origin.hits, 1);
  } finally {
    await f.close();
  }
});

test('a DNS failure blocks the request (layer ssrf) without reaching anything', async () => {
  const asked: string[] = [];
  const f = await fixture(
    (port) =>
      `version: "1.0"\negress:\n  - destination: "unpinned.example.test"\n    ports: [${port}]\ndefault_deny: true\n`,
    echo,
    {
      lookup: (name) => {
        asked.push(name);
        return Promise.reject(Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' }));
      },
    },
  );
  try {
    await expectBlocked(
      f,
      `http://unpinned.example.test:${f.origin.port}/r/${token()}`,
      'ssrf',
      'GET',
      /DNS resolution error for unpinned\.example\.test: ENOTFOUND/,
    );
    assert.deepEqual(asked, ['unpinned.example.test']);
  } finally {
    await f.close();
  }
});

test('audit mode: a would-be block is recorded as warn and the request passes', async () => {
  const f = await fixture(
    (port) => `version: "1.0"
mode: audit
egress:
  - destination: "api.example.test"
    ports: [${port}]
    methods: ["GET"]
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`,
    echo,
    { pins: { 'elsewhere.example.test': '127.0.0.1', 'api.example.test': '127.0.0.1' } },
  );
  try {
    const id = token();
    const other = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      `http://elsewhere.example.test:${f.origin.port}/r/${id}`,
    ]);
    assert.equal(parseCurlResponse(other.stdout).status, 200);
    const id2 = token();
    const post = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '-d',
      'a=1',
      `http://api.example.test:${f.origin.port}/r/${id2}`,
    ]);
    assert.equal(parseCurlResponse(post.stdout).status, 200);
    assert.equal(f.origin.hits, 2);
    assert.deepEqual(f.early, []);
    const [first] = receiptsFor(f.proxy.dir, id);
    assert.equal(first?.action_record.verdict, 'warn');
    assert.equal(first?.action_record.layer, 'destination');
    const [second] = receiptsFor(f.proxy.dir, id2);
    assert.equal(second?.action_record.verdict, 'warn');
    assert.equal(second?.action_record.layer, 'method');
  } finally {
    await f.close();
  }
});

test('a rule naming 127.0.0.1:PORT for GET opens that: not other ports, methods or audit warnings to a name resolving there', async () => {
  const other = await startOrigin(echo);
  const namingRule = (port: number, mode = '') => `version: "1.0"
${mode}egress:
  - destination: "127.0.0.1:${port}"
    methods: ["GET"]
default_deny: false
`;
  const status = async (f: Fixture, method: string, url: string) => {
    const result = await curl(['-i', '-X', method, '--proxy', f.proxy.proxyUrl, url]);
    const response = parseCurlResponse(result.stdout);
    return `${response.status} ${response.headers['x-pipelock-egress-block'] ?? ''}`.trim();
  };
  const f = await fixture(namingRule, echo, { pins: { 'sneaky.example.test': '127.0.0.1' } });
  const audit = await fixture((port) => namingRule(port, 'mode: audit\n'));
  try {
    assert.equal(
      await status(f, 'GET', `http://sneaky.example.test:${f.origin.port}/r/${token()}`),
      '200',
    );
    assert.equal(await status(f, 'GET', `http://sneaky.example.test:${other.port}/`), '403 ssrf');
    assert.equal(
      await status(f, 'DELETE', `http://sneaky.example.test:${f.origin.port}/`),
      '403 ssrf',
    );
    // Audit mode lets the policy's refusal pass as a warning; the address stays closed to it.
    assert.equal(
      await status(audit, 'DELETE', `http://127.0.0.1:${audit.origin.port}/`),
      '403 ssrf',
    );
    assert.equal(f.origin.hits, 1);
    assert.equal(audit.origin.hits, 0);
    assert.equal(other.hits, 0);
  } finally {
    await f.close();
    await audit.close();
    await other.close();
  }
});

test('audit mode does not relax the SSRF guard', async () => {
  const f = await fixture(
    (port) =>
      `version: "1.0"\nmode: audit\negress:\n  - destination: "api.example.test"\n    ports: [${port}]\ndefault_deny: true\n`,
  );
  try {
    await expectBlocked(f, `http://api.example.test:${f.origin.port}/r/${token()}`, 'ssrf');
  } finally {
    await f.close();
  }
});

test('hop-by-hop headers and those that speak for a hop are stripped, no Via is added, and no origin passes for the engine', async () => {
  const f = await fixture(basicPolicy, (req, res) => {
    res.setHeader('Connection', 'X-Origin-Hop, keep-alive');
    res.setHeader('X-Origin-Hop', 'secret');
    // Only the engine may say a request was blocked.
    res.setHeader('X-Pipelock-Egress-Block', 'dlp');
    res.setHeader('Keep-Alive', 'timeout=5');
    res.setHeader('X-End-To-End', 'kept');
    echo(req, res);
  });
  try {
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '-H',
      'Connection: X-Client-Hop',
      '-H',
      'X-Client-Hop: hidden',
      '-H',
      'Keep-Alive: timeout=9',
      '-H',
      'Proxy-Authorization: Basic dXNlcjpwYXNz',
      '-H',
      'Proxy-Connection: keep-alive',
      '-H',
      'TE: trailers',
      '-H',
      'X-Kept: yes',
      // The agent's word on where the request came from, passed off as a proxy's.
      ...[
        'X-Forwarded-For: 127.0.0.1',
        'X-Forwarded-Proto: https',
        'X-Forwarded-Host: admin.internal',
        'Forwarded: for=127.0.0.1',
        'X-Real-IP: 10.0.0.1',
        'Via: 1.1 trusted-proxy',
        'Pipelock-Mediation: allow',
        'X-Pipelock-Agent: someone-else',
        'X_Forwarded_For: 127.0.0.1',
        'True-Client-IP: 127.0.0.1',
        'CF-Connecting-IP: 127.0.0.1',
      ].flatMap((header) => ['-H', header]),
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    const seen = JSON.parse(response.body.toString()) as { headers: Record<string, string> };
    for (const name of [
      'x-client-hop',
      'keep-alive',
      'proxy-authorization',
      'proxy-connection',
      'te',
      'via',
      'forwarded',
      'x-forwarded-for',
      'x-forwarded-proto',
      'x-forwarded-host',
      'x-real-ip',
      'pipelock-mediation',
      'x-pipelock-agent',
      'x_forwarded_for',
      'true-client-ip',
      'cf-connecting-ip',
    ])
      assert.equal(seen.headers[name], undefined, `${name} reached the origin`);
    assert.equal(seen.headers['x-kept'], 'yes');
    assert.equal(response.headers['x-origin-hop'], undefined);
    assert.equal(response.headers['x-pipelock-egress-block'], undefined);
    // The engine's own connection to curl may announce its keep-alive; the origin's never passes.
    assert.notEqual(response.headers['keep-alive'], 'timeout=5');
    assert.equal(response.headers.via, undefined);
    assert.equal(response.headers['x-end-to-end'], 'kept');
  } finally {
    await f.close();
  }
});

test('GET /health answers JSON with status, version, policy hash and counters', async () => {
  const f = await fixture(basicPolicy);
  try {
    await curl(['--proxy', f.proxy.proxyUrl, `http://other.example.test:${f.origin.port}/`]);
    await curl([
      '--proxy',
      f.proxy.proxyUrl,
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    const result = await curl(['-i', `${f.proxy.proxyUrl}/health`]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    assert.match(response.headers['content-type'] ?? '', /application\/json/);
    const health = JSON.parse(response.body.toString()) as Record<string, unknown> & {
      counters: Record<string, number>;
    };
    assert.equal(health.status, 'healthy');
    assert.equal(health.version, '0.0.0-test');
    assert.match(String(health.policy_hash), /^[0-9a-f]{64}$/);
    assert.equal(health.counters.allowed, 1);
    assert.equal(health.counters.blocked, 1);
    assert.equal(health.counters.evidence_errors, 0);
  } finally {
    await f.close();
  }
});

test('origin-form requests other than /health are answered 400, each with a block receipt', async () => {
  const f = await fixture(basicPolicy);
  try {
    const paths = ['/', '/r/x', '/health/../x', '/ws?url=ws://api.example.test/'];
    for (const path of paths) {
      const result = await curl(['-i', `${f.proxy.proxyUrl}${path}`]);
      const response = parseCurlResponse(result.stdout);
      assert.equal(response.status, 400, path);
      assert.equal(response.headers['x-pipelock-egress-block'], 'request', path);
      assert.match(response.body.toString(), /^blocked: /);
    }
    assert.equal(f.origin.hits, 0);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    assert.deepEqual(
      decisions(evidence.receipts).map((r) => [r.action_record.verdict, r.action_record.layer]),
      paths.map(() => ['block', 'request']),
    );
  } finally {
    await f.close();
  }
});

test('POST /health is not health', async () => {
  const f = await fixture(basicPolicy);
  try {
    const result = await curl(['-i', '-X', 'POST', `${f.proxy.proxyUrl}/health`]);
    assert.equal(parseCurlResponse(result.stdout).status, 400);
  } finally {
    await f.close();
  }
});

test('keep-alive: several requests on one client connection each get their own receipt', async () => {
  const f = await fixture(basicPolicy);
  const agent = new ProxyAgent({ uri: f.proxy.proxyUrl, proxyTunnel: false, connections: 1 });
  try {
    const ids = Array.from({ length: 20 }, () => token());
    for (const id of ids) {
      const response = await request(`http://api.example.test:${f.origin.port}/r/${id}`, {
        dispatcher: agent,
      });
      assert.equal(response.statusCode, 200);
      await response.body.dump();
    }
    assert.deepEqual(f.early, []);
    await f.proxy.stop();
    const evidence = readEvidenceDir(f.proxy.dir);
    assertValid(evidence, true);
    const decided = decisions(evidence.receipts);
    assert.equal(decided.length, ids.length);
    assert.deepEqual(new Set(decided.map((r) => r.action_record.request_id)).size, ids.length);
  } finally {
    await agent.close();
    await f.close();
  }
});

test('credentials in an absolute-form URL never reach the evidence in clear', async () => {
  const f = await fixture(basicPolicy);
  try {
    const id = token();
    const target = `api.example.test:${f.origin.port}`;
    const { text } = await rawExchange(
      f.proxy.port,
      `GET http://agent:hunter2-secret@${target}/r/${id} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(text), 200, text);
    await f.proxy.stop();
    const files = readEvidenceDir(f.proxy.dir);
    assertValid(files, true);
    const [receipt] = decisions(files.receipts);
    assert.doesNotMatch(receipt?.action_record.target ?? '', /hunter2/);
    assert.match(receipt?.action_record.target ?? '', new RegExp(`/r/${id}$`));
  } finally {
    await f.close();
  }
});

test('a URL with more slashes before its host is refused 400: a parser skips them, so the path sent would not be the path judged', async () => {
  const f = await fixture(basicPolicy);
  try {
    const target = `api.example.test:${f.origin.port}`;
    // Judged as /r/x on the host; spelled, its path is /admin@host/r/x (or /agent:…@host/r/x).
    const spellings = [
      `http:///admin@${target}/r/x`,
      `http:////admin%2Fusers;@${target}/r/x`,
      `http:///agent:hunter2-secret@${target}/r/x`,
    ];
    for (const url of spellings) {
      const { text } = await rawExchange(
        f.proxy.port,
        `GET ${url} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(text), 400, text);
      assert.match(text, /blocked: the URL has more than two slashes before its host/);
    }
    assert.equal(f.origin.hits, 0);
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      records.map((record) => [record.target, record.verdict, record.layer ?? '']),
      [
        // What a parser takes for userinfo is not recorded, whatever it holds.
        [`http:///[REDACTED]@${target}/r/x`, 'block', 'request'],
        [`http:////[REDACTED]@${target}/r/x`, 'block', 'request'],
        [`http:///[REDACTED]@${target}/r/x`, 'block', 'request'],
      ],
    );
  } finally {
    await f.close();
  }
});

test('the Host header sent upstream is the URL authority, not the client-supplied Host', async () => {
  const f = await fixture(basicPolicy);
  try {
    const target = `api.example.test:${f.origin.port}`;
    const result = await curl([
      '-i',
      '--proxy',
      f.proxy.proxyUrl,
      '-H',
      'Host: evil.example.test',
      `http://${target}/r/${token()}`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    const body = JSON.parse(response.body.toString()) as { rawHeaders: string[] };
    const hosts = body.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'host');
    assert.equal(hosts.length, 1);
    assert.equal(
      body.rawHeaders[body.rawHeaders.findIndex((h) => h.toLowerCase() === 'host') + 1],
      target,
    );
  } finally {
    await f.close();
  }
});

test('a client gone before or during the answer cancels the upstream request; the outcome says 499 client', async () => {
  const cancelled: string[] = [];
  const f = await fixture(basicPolicy, (req, res) => {
    res.on('close', () => cancelled.push(req.url ?? ''));
    // Neither answer ever completes: only a cancelled request ends.
    if (req.url === '/partial') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part');
    }
  });
  try {
    const ask = (path: string, until: (socket: ReturnType<typeof connect>) => Promise<void>) =>
      new Promise<void>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: f.proxy.port }, () => {
          socket.write(
            `GET http://api.example.test:${f.origin.port}${path} HTTP/1.1\r\nHost: api.example.test:${f.origin.port}\r\n\r\n`,
          );
          until(socket).then(() => {
            socket.destroy();
            resolve();
          }, reject);
        });
      });
    await ask(
      '/partial',
      (socket) =>
        new Promise((resolve) =>
          socket.on('data', (data: Buffer) => {
            if (data.toString().includes('first part')) resolve();
          }),
        ),
    );
    await ask('/never', () => waitFor(() => f.origin.hits === 2, 5_000, 'the second request'));
    await waitFor(() => cancelled.length === 2, 5_000, 'the origin to see both requests end');
    assert.deepEqual(cancelled.sort(), ['/never', '/partial']);
    const outcomes = (await sealedRecords(f.proxy))
      .filter((record) => record.decision_phase === 'outcome')
      .map((record) => [new URL(record.target).pathname, record.pattern]);
    const gone =
      'status=499 layer=client reason=the client connection closed before the answer was complete';
    assert.deepEqual(outcomes.sort(), [
      ['/never', gone],
      ['/partial', gone],
    ]);
  } finally {
    await f.close();
  }
});

test('HEAD passes and answers without a body', async () => {
  const f = await fixture(basicPolicy, (_req, res) => {
    res.writeHead(200, { 'content-length': '1234', 'x-head': 'yes' });
    res.end();
  });
  try {
    const result = await curl([
      '-sS',
      '-I',
      '--proxy',
      f.proxy.proxyUrl,
      `http://api.example.test:${f.origin.port}/r/${token()}`,
    ]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 200);
    assert.equal(response.headers['content-length'], '1234');
    assert.equal(response.headers['x-head'], 'yes');
    assert.equal(response.body.length, 0);
  } finally {
    await f.close();
  }
});

test('the path and query go upstream as the client spelled them, as the receipt records them', async () => {
  const f = await fixture(basicPolicy);
  try {
    const host = `api.example.test:${f.origin.port}`;
    const ask = (path: string) =>
      rawExchange(
        f.proxy.port,
        `GET http://${host}${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
    const spelled = [
      `/r/q?a=<>&b="q"&c='x'&d=\`{}\``,
      '/r/a%2Fb',
      '/r/a;b',
      '/r/%7e',
      '/r/{x}|^"<>`',
      '?only=query',
    ];
    const seen: string[] = [];
    for (const path of spelled) {
      const { text } = await ask(path);
      assert.equal(statusOf(text), 200, text);
      seen.push(JSON.parse(/"url":("(?:[^"\\]|\\.)*")/.exec(text)?.[1] ?? '""') as string);
    }
    // An empty path is sent as "/" (RFC 9112 3.2.1).
    assert.deepEqual(seen, [...spelled.slice(0, -1), '/?only=query']);
    const misspelled = ['/r/x/../y', '/r/%2e/y', '/r\\x', '/r/x#top'];
    for (const path of misspelled) {
      const { text } = await ask(path);
      assert.equal(statusOf(text), 400, text);
      assert.match(text, /X-Pipelock-Egress-Block: request\r\n/);
    }
    assert.equal(f.origin.hits, spelled.length);
    const records = await sealedRecords(f.proxy);
    assert.deepEqual(
      records.map((record) => [record.target, record.verdict, record.layer ?? '']),
      [
        ...spelled.map((path) => [`http://${host}${path}`, 'allow', '']),
        ...misspelled.map((path) => [`http://${host}${path}`, 'block', 'request']),
      ],
    );
  } finally {
    await f.close();
  }
});

test("the origin's reason phrase is relayed; one undici cannot hand over as sent gets the standard phrase", async () => {
  const f = await fixture(basicPolicy, (req, res) => {
    const [status, phrase] =
      req.url === '/r/weird'
        ? [999, 'Weird']
        : req.url === '/r/fine'
          ? [200, 'Fine thanks']
          : [200, 'Caf\xe9'];
    res.writeHead(status, phrase, { 'content-length': '5' });
    res.end('hello');
  });
  try {
    const host = `api.example.test:${f.origin.port}`;
    const get = (path: string) => `GET http://${host}${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    const { text } = await rawExchange(
      f.proxy.port,
      [get('/r/weird'), get('/r/fine'), get('/r/latin')],
      2_000,
    );
    assert.deepEqual(
      [...text.matchAll(/HTTP\/1\.1 [^\r]*/g)].map((match) => match[0]),
      ['HTTP/1.1 999 Weird', 'HTTP/1.1 200 Fine thanks', 'HTTP/1.1 200 OK'],
    );
  } finally {
    await f.close();
  }
});

test('a 304 or 204 declaring a length is relayed with its headers and no body; a body cut short reaches the client cut short, its outcome 502', async () => {
  const f = await fixture(basicPolicy, (req, res) => {
    if (req.url === '/r/not-modified') res.writeHead(304, { etag: '"x"', 'content-length': '99' });
    else if (req.url === '/r/no-content') res.writeHead(204, { 'content-length': '5' });
    else if (req.url === '/r/cut-short') {
      res.writeHead(200, { 'content-length': '100' });
      return void res.write('0123456789', () => res.socket?.destroy());
    } else return echo(req, res);
    res.end();
  });
  try {
    const host = `api.example.test:${f.origin.port}`;
    const get = (path: string, last = false) =>
      `GET http://${host}${path} HTTP/1.1\r\nHost: ${host}\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    const pipelined = await rawExchange(f.proxy.port, [
      get('/r/not-modified'),
      get('/r/no-content'),
      get('/r/after', true),
    ]);
    assert.deepEqual(
      [...pipelined.text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => match[1]),
      ['304', '204', '200'],
      pipelined.text,
    );
    assert.match(pipelined.text, /^HTTP\/1\.1 304 [^]*etag: "x"\r\ncontent-length: 99\r\n/);
    assert.match(pipelined.text, /\r\n\r\nHTTP\/1\.1 204 [^]*\r\n\r\nHTTP\/1\.1 200 /);
    assert.equal(pipelined.closed, true);
    const cut = await rawExchange(f.proxy.port, get('/r/cut-short'));
    assert.match(cut.text, /^HTTP\/1\.1 200 [^]*content-length: 100\r\n[^]*\r\n\r\n0123456789$/);
    assert.equal(cut.closed, true);
    const outcomes = (await sealedRecords(f.proxy))
      .filter((record) => record.decision_phase === 'outcome')
      .map((record) => [new URL(record.target).pathname, record.pattern]);
    assert.equal(outcomes.length, 1, JSON.stringify(outcomes));
    assert.equal(outcomes[0]?.[0], '/r/cut-short');
    assert.match(outcomes[0]?.[1] ?? '', /^status=502 layer=upstream reason=/);
  } finally {
    await f.close();
  }
});

test('an answer in a transfer coding other than chunked is refused 502 with an outcome receipt, not relabelled', async () => {
  const f = await fixture(basicPolicy, (_req, res) => {
    res.writeHead(200, { 'transfer-encoding': 'gzip, chunked' });
    res.end(gzipSync('compressed content'));
  });
  try {
    const url = `http://api.example.test:${f.origin.port}/r/${token()}`;
    const result = await curl(['-i', '--proxy', f.proxy.proxyUrl, url]);
    const response = parseCurlResponse(result.stdout);
    assert.equal(response.status, 502, result.stdout.toString('latin1'));
    assert.equal(response.headers['x-pipelock-egress-block'], 'upstream');
    const reason = `upstream http://api.example.test:${f.origin.port} answered with Transfer-Encoding gzip, chunked, which the proxy does not relay: it relays only chunked and identity`;
    assert.equal(response.body.toString(), `blocked: ${reason}\n`);
    const outcomes = (await sealedRecords(f.proxy)).filter((r) => r.decision_phase === 'outcome');
    assert.deepEqual(
      outcomes.map((r) => r.pattern),
      [`status=502 layer=upstream reason=${reason}`],
    );
  } finally {
    await f.close();
  }
});

for (const [what, upgrade, status, layer, method] of [
  ['a WebSocket upgrade the policy does not enable', 'websocket', 403, 'websocket', 'WS'],
  ['an upgrade to another protocol', 'h2c', 400, 'request', 'GET'],
] as const) {
  test(`${what} through the forward proxy is refused ${status} with a receipt`, async () => {
    const f = await fixture(basicPolicy);
    try {
      const target = `api.example.test:${f.origin.port}`;
      const { text } = await rawExchange(
        f.proxy.port,
        `GET http://${target}/r/ws HTTP/1.1\r\nHost: ${target}\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      assert.equal(statusOf(text), status, text);
      assert.match(text, new RegExp(`X-Pipelock-Egress-Block: ${layer}`));
      if (upgrade === 'h2c')
        assert.match(
          text,
          /not this GET upgrade to "h2c": send the request without Upgrade \(curl: no --http2/,
        );
      await f.proxy.stop();
      assert.equal(f.origin.hits, 0);
      const [receipt] = decisions(readEvidenceDir(f.proxy.dir).receipts);
      assert.equal(receipt?.action_record.verdict, 'block');
      assert.equal(receipt?.action_record.layer, layer);
      assert.equal(receipt?.action_record.method, method);
    } finally {
      await f.close();
    }
  });
}

test('the Upgrade value a refusal quotes has its secrets cut out before it is cut short: no piece of a bound secret spanning the cut is left', async () => {
  const secret = 'Zq8vN3xP0wLk7sRt2YbH5mCd9FgJ4aUe';
  const withSecretValues = (policy: (port: number) => string) => (port: number) =>
    `${policy(port)}secrets:\n  - env: PTOKEN\n    allow: ["strict.example.test"]\n`;
  const f = await fixture(withSecretValues(basicPolicy), echo, {
    secretValues: { PTOKEN: secret },
  });
  try {
    const target = `api.example.test:${f.origin.port}`;
    // The secret starts 20 characters in: a cut at 40 before redacting would keep 20 of it.
    const upgrade = `h2c-${'a'.repeat(16)}${secret}`;
    const { text } = await rawExchange(
      f.proxy.port,
      `GET http://${target}/r/x HTTP/1.1\r\nHost: ${target}\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`,
    );
    assert.equal(statusOf(text), 400, text);
    assert.match(text, /not this GET upgrade to "h2c-a{16}\[REDACTED:secret:PTOKEN\]"/);
    await f.proxy.stop();
    const evidence = readdirSync(f.proxy.dir)
      .map((name) => readFileSync(join(f.proxy.dir, name), 'utf8'))
      .join('');
    assert.equal(evidence.includes(secret.slice(0, 8)), false);
    assert.equal(f.origin.hits, 0);
  } finally {
    await f.close();
  }
});

test('50 MB pass both ways with the default limits (chunked upload, fixed-length download)', async () => {
  const size = 50 * 1000 * 1000;
  const piece = randomBytes(1024 * 1024);
  const f = await fixture(basicPolicy, (req, res) => {
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => {
      res.writeHead(200, { 'content-length': String(size), 'x-upload-length': String(length) });
      let sent = 0;
      const pump = () => {
        while (sent < size) {
          const part = piece.subarray(0, Math.min(piece.length, size - sent));
          sent += part.length;
          if (!res.write(part)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
  });
  const agent = proxyAgent(f.proxy);
  try {
    async function* upload() {
      for (let sent = 0; sent < size; sent += piece.length)
        yield piece.subarray(0, Math.min(piece.length, size - sent));
    }
    const response = await request(`http://api.example.test:${f.origin.port}/r/${token()}`, {
      method: 'POST',
      body: Readable.from(upload()),
      dispatcher: agent,
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['x-upload-length'], String(size));
    let received = 0;
    for await (const chunk of response.body) received += (chunk as Buffer).length;
    assert.equal(received, size);
  } finally {
    await agent.close();
    await f.close();
  }
});

test('the engine can serve on an already-listening handle handed over to it', async () => {
  const origin = await startOrigin(echo);
  const { createServer } = await import('node:net');
  const { Engine } = await import('../../src/engine/engine.js');
  const { EvidenceWriter } = await import('../../src/engine/evidence-writer.js');
  const { createResolver } = await import('../../src/engine/resolver.js');
  const { backend, namePins, noLookup, policyFrom } = await import('./helpers.js');
  const listening = createServer();
  await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
  const dir = tempDir();
  const policy = policyFrom(basicPolicy(origin.port));
  const writer = EvidenceWriter.open({
    dir,
    backend,
    seed: randomBytes(32),
    run: { actor: 'handle-test', policyHash: policy.hash },
  }).writer;
  const engine = new Engine({
    policy,
    log: writer,
    resolver: createResolver(namePins({ 'api.example.test': '127.0.0.1' }), noLookup),
    ca: runCa,
    version: 'test',
  });
  try {
    const address = await engine.listen({ handle: listening });
    assert.equal(address.host, '127.0.0.1');
    const result = await curl([
      '-i',
      '--proxy',
      `http://127.0.0.1:${address.port}`,
      `http://api.example.test:${origin.port}/r/${token()}`,
    ]);
    assert.equal(parseCurlResponse(result.stdout).status, 200);
    assert.equal(origin.hits, 1);
  } finally {
    await engine.close();
    writer.seal();
    listening.close();
    await origin.close();
    assertValid(readEvidenceDir(dir), true);
    cleanup(dir);
  }
});

test('fetch (undici) through the proxy: POST with a body and the JSON answer', async () => {
  const { fetch } = await import('undici');
  const f = await fixture(basicPolicy);
  const agent = proxyAgent(f.proxy);
  try {
    const id = token();
    const response = await fetch(`http://api.example.test:${f.origin.port}/r/${id}`, {
      method: 'POST',
      body: JSON.stringify({ hello: 'world' }),
      headers: { 'content-type': 'application/json' },
      dispatcher: agent,
    });
    assert.equal(response.status, 200);
    const seen = (await response.json()) as { method: string; length: number; url: string };
    assert.deepEqual([seen.method, seen.length, seen.url], ['POST', 17, `/r/${id}`]);
    const blocked = await fetch('http://blocked.example.test/', { dispatcher: agent });
    assert.equal(blocked.status, 403);
    assert.equal(blocked.headers.get('x-pipelock-egress-block'), 'destination');
    assert.match(await blocked.text(), /^blocked: no egress rule allows blocked\.example\.test/);
    assert.deepEqual(f.early, []);
  } finally {
    await agent.close();
    await f.close();
  }
});
