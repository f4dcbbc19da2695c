// `pipelock-egress view`: an Audit Packet verified as the action verifies it, its other files
// checked against the verified chain, and pages served on loopback that escape everything the
// packet says, behind a token and a pinned Host header. Real packets, a real HTTP server.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cli, quietIo } from '../cli/run-cli.js';
import { openPacket } from '../../src/cli/open-packet.js';
import { scratchDir } from '../scratch.js';
import { SAMPLE_KEY, SAMPLE_POLICY_HASH, sampleDecision } from '../receipts/sample-evidence.js';
import { writeSamplePacket } from './packet-fixture.js';
import { loadPacketView, type PacketView } from '../../src/packet/view/load-packet.js';
import { serveViewer, type RunningViewer } from '../../src/packet/view/viewer-server.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { escapeHtml, html } from '../../src/packet/view/html.js';
import { indentJson, PAGE_SIZE, rowQuery, selectRows } from '../../src/packet/view/receipt-rows.js';
import { encodePublicKeyPem, publicKeyHex } from '../../src/receipts/keys.js';
import { KEY_A } from '../receipts/vectors.js';
import { fromHex } from '../../src/receipts/bytes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const backend = createNodeBackend();
const viewers: RunningViewer[] = [];
after(() => Promise.all(viewers.map((v) => v.close())));

async function packet(decisions = 20, decide = sampleDecision): Promise<string> {
  const dir = join(scratchDir('pe-view-'), 'packet');
  await writeSamplePacket(dir, decisions, { decide });
  return dir;
}

function load(dir: string, pinned: readonly string[] = [SAMPLE_KEY]): Promise<PacketView> {
  return loadPacketView(dir, backend, pinned);
}

async function serve(view: PacketView): Promise<RunningViewer> {
  const viewer = await serveViewer(view, { host: '127.0.0.1', port: 0 });
  viewers.push(viewer);
  return viewer;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function get(url: string, options: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ...(options.host ? { headers: { Host: options.host } } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function statuses(view: PacketView): Record<string, string> {
  return Object.fromEntries(view.checks.map((c) => [c.file, c.status]));
}

const ALL_MATCH = {
  'evidence.jsonl': 'ok',
  'evidence/': 'ok',
  'receipts.json': 'ok',
  'policy.yaml': 'ok',
  'policy-hash.txt': 'ok',
  'signer-public-key.pem': 'ok',
  'verification-report.json': 'ok',
  'packet.json': 'ok',
  'summary.md': 'ok',
  'engine.log': 'ok',
  './': 'ok',
};

test('a packet as run writes it, with its key pinned: valid, every file matches, one row per receipt', async () => {
  const view = await load(await packet(20));
  assert.equal(view.judgement.verdict, 'valid');
  assert.equal(view.rows.length, 22);
  assert.deepEqual(
    view.rows.map((r) => r.seq),
    Array.from({ length: 22 }, (_, i) => BigInt(i)),
  );
  assert.deepEqual(statuses(view), ALL_MATCH);
  assert.equal(view.summary.receiptCount, 22);
  assert.equal(view.summary.totals.block, 4);
  // Each row's hash is the next receipt's chain_prev_hash.
  view.rows.slice(1).forEach((row, i) => assert.equal(row.prevHash, view.rows[i]?.hash));
});

test('served: the overview states the verdict and what was verified, under a strict CSP', async () => {
  const view = await load(await packet(20));
  const { url } = await serve(view);
  assert.match(url, /^http:\/\/127\.0\.0\.1:[0-9]+\/[0-9a-f]{32}\/$/);
  const page = await get(url);
  assert.equal(page.status, 200);
  assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(
    String(page.headers['content-security-policy']),
    /^default-src 'none'; style-src 'self';/,
  );
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.equal(page.headers['referrer-policy'], 'no-referrer');
  assert.match(page.body, /<h1>VALID<\/h1>/);
  assert.match(page.body, new RegExp(`signed by a key you pinned: <code>${SAMPLE_KEY}</code>`));
  assert.match(page.body, /<tr><th>Receipts<\/th><td>22<\/td><\/tr>/);
  assert.match(page.body, /<tr><th>Sealed<\/th><td>yes<\/td><\/tr>/);
  assert.doesNotMatch(page.body, /DOES NOT MATCH/);
  assert.doesNotMatch(page.body, /<script/i);
  // Every blocked request of the chain is listed (decisions 4, 9, 14, 19).
  for (const seq of [4, 9, 14, 19])
    assert.match(
      page.body,
      new RegExp(`<tr><td><a href="[^"]+receipts/${seq}">${seq}</a></td><td>block</td>`),
    );
  const style = await get(`${url}style.css`);
  assert.equal(style.status, 200);
  assert.equal(style.headers['content-type'], 'text/css; charset=utf-8');
});

test('served: receipts filter by verdict, destination and text; a receipt shows what was signed', async () => {
  const view = await load(await packet(20));
  const { url } = await serve(view);
  const blocked = await get(`${url}receipts?verdict=block`);
  assert.equal(blocked.status, 200);
  assert.match(blocked.body, /<p>4 of 22 receipts\.<\/p>/);
  assert.equal(blocked.body.match(/<tr class="block">/g)?.length, 4);
  assert.doesNotMatch(blocked.body, /<tr class="allow">/);
  const toOne = await get(`${url}receipts?destination=api3.example.test`);
  assert.match(toOne.body, /<p>3 of 22 receipts to <code>api3\.example\.test<\/code>\.<\/p>/);
  const text = await get(`${url}receipts?q=PAGE%3D1`);
  // page=1, page=10 … page=19: the text match ignores case.
  assert.match(text.body, /<p>11 of 22 receipts\.<\/p>/);

  const one = await get(`${url}receipts/7`);
  assert.equal(one.status, 200);
  const row = view.rows[7];
  assert.ok(row);
  assert.match(one.body, new RegExp(`<tr><th>Receipt hash</th><td><code>${row.hash}</code>`));
  assert.match(
    one.body,
    /<a href="[^"]+receipts\/6">← seq 6<\/a> <a href="[^"]+receipts\/8">seq 8 →<\/a>/,
  );
  const pre = /<pre>([^<]*)<\/pre>/.exec(one.body)?.[1] ?? '';
  const unescaped = pre
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/&#39;/g, "'");
  assert.deepEqual(JSON.parse(unescaped), JSON.parse(new TextDecoder().decode(row.encoded)));
  assert.equal((await get(`${url}receipts/0007`)).status, 200);
  const missing = await get(`${url}receipts/99`);
  assert.equal(missing.status, 404);
  assert.match(missing.body, /No verified receipt has seq 99\./);

  const policy = await get(`${url}policy`);
  assert.match(policy.body, /<pre>version: &quot;1\.0&quot;\nmode: enforce\n/);
  assert.match(
    policy.body,
    /policy\.yaml<\/code>: matches: its SHA-256 is the policy_hash every receipt carries/,
  );
});

test('served: 250 decisions page by 100, with links that keep the filter', async () => {
  const view = await load(await packet(250));
  const { url } = await serve(view);
  const first = await get(`${url}receipts`);
  assert.equal(first.body.match(/<tr class="/g)?.length, PAGE_SIZE);
  assert.match(first.body, /page 1 of 3 <a href="[^"]+receipts\?page=2">next →<\/a>/);
  const last = await get(`${url}receipts?page=3`);
  assert.equal(last.body.match(/<tr class="/g)?.length, 52);
  assert.match(last.body, /<a href="[^"]+receipts\?page=2">← previous<\/a> page 3 of 3/);
  const allowed = await get(`${url}receipts?verdict=allow&page=2`);
  assert.match(
    allowed.body,
    /receipts\?verdict=allow">← previous<\/a> page 2 of 3 <a href="[^"]+receipts\?verdict=allow&amp;page=3">/,
  );
});

test('the overview lists the first 100 blocked requests and links to all of them', async () => {
  const view = await load(await packet(505));
  assert.equal(view.summary.refused.length, 101);
  const { body } = await get((await serve(view)).url);
  assert.equal(
    body.match(/<tr><td><a href="[^"]+receipts\/[0-9]+">[0-9]+<\/a><\/td><td>block<\/td>/g)?.length,
    100,
  );
  assert.match(
    body,
    /<p>The first 100 of 101; all of them: <a href="[^"]+receipts\?verdict=block">verdict block<\/a>\.<\/p>/,
  );
  assert.match(body, /receipts\/499">499</);
  assert.doesNotMatch(body, /receipts\/504">504</);
});

test('the overview lists 200 destinations, those reached first, and links to every receipt', async () => {
  // 260 hosts: every fifth request is blocked, so 52 were refused and 208 reached.
  const view = await load(
    await packet(260, (i) => ({ ...sampleDecision(i), target: `https://h${i}.example.test/x` })),
  );
  assert.equal(view.summary.destinations.length, 260);
  const { body } = await get((await serve(view)).url);
  const rows = [...body.matchAll(/<tr><td><a href="[^"]+destination=([^"&]+)[^"]*">/g)];
  assert.equal(rows.length, 200);
  assert.match(
    body,
    /<p>200 of 260: those reached first, then those refused; <a href="[^"]+receipts">every receipt<\/a> names the rest\.<\/p>/,
  );
  const reached = view.summary.destinations.filter((d) => d.allowed > 0);
  assert.equal(reached.length, 208);
  const listed = new Set(rows.map((row) => decodeURIComponent(row[1] ?? '')));
  assert.equal(reached.filter((d) => listed.has(d.destination)).length, 200);
});

test('hostile text in receipts is shown as text: no markup, no hidden or reordering characters', async () => {
  const hostile = [
    'https://x.example.test/<script>alert(1)</script>',
    'https://x.example.test/"><img src=x onerror=alert(2)>',
    "https://x.example.test/' onmouseover='alert(3)",
    'https://x.example.test/\u202egnp.exe',
    'https://x.example.test/a\u0000b\u001bc',
  ];
  const view = await load(
    await packet(hostile.length, (i) => ({
      ...sampleDecision(i),
      target: hostile[i - 1] ?? '',
      verdict: 'block',
      layer: '<b>layer</b>',
      pattern: '</td></tr></table><h1>forged VALID</h1>',
    })),
  );
  assert.equal(view.judgement.verdict, 'valid');
  const { url } = await serve(view);
  for (const path of [
    '',
    'receipts',
    'receipts?verdict=block',
    'receipts/1',
    'receipts/2',
    'receipts/3',
    'receipts/4',
    'receipts/5',
  ]) {
    const { body } = await get(`${url}${path}`);
    assert.doesNotMatch(body, /<script|<img|<b>|<h1>forged|onmouseover='/i, path);
    for (const hidden of ['\u202e', '\u0000', '\u001b']) assert.ok(!body.includes(hidden), path);
  }
  const { body } = await get(url);
  assert.match(body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(body, /&quot;&gt;&lt;img src=x onerror=alert\(2\)&gt;/);
  assert.match(body, /&#39; onmouseover=&#39;alert\(3\)/);
  assert.match(body, /\\u202egnp\.exe/);
  assert.match(body, /a\\u0000b\\u001bc/);
  assert.match(body, /&lt;\/td&gt;&lt;\/tr&gt;&lt;\/table&gt;&lt;h1&gt;forged VALID/);
  // A query string is text, too.
  const search = await get(`${url}receipts?q=%22%3E%3Cscript%3E`);
  assert.match(search.body, /<input name="q" value="&quot;&gt;&lt;script&gt;">/);
});

test('the token, the Host header and the method: anything else gets nothing', async () => {
  const view = await load(await packet(3));
  const { url } = await serve(view);
  const { origin, pathname } = new URL(url);
  const port = new URL(url).port;
  const root = await get(`${origin}/`);
  assert.equal(root.status, 404);
  assert.equal(root.body, 'not found\n');
  assert.equal((await get(`${origin}/receipts`)).status, 404);
  assert.equal((await get(`${origin}/${'0'.repeat(32)}/`)).status, 404);
  const noSlash = await get(`${origin}${pathname.slice(0, -1)}`);
  assert.equal(noSlash.status, 308);
  assert.equal(noSlash.headers.location, pathname);
  // DNS rebinding: a page of another site reaching 127.0.0.1 under its own name.
  const rebound = await get(url, { host: `attacker.example:${port}` });
  assert.equal(rebound.status, 421);
  assert.doesNotMatch(rebound.body, /VALID/);
  assert.equal((await get(url, { host: `127.0.0.1:${Number(port) + 1}` })).status, 421);
  assert.equal((await get(url, { host: `localhost:${port}` })).status, 200);
  const post = await get(url, { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  const head = await get(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.ok(Number(head.headers['content-length']) > 0);
});

test('a page that cannot be made (a value past what a string holds) is answered 500 with why; the viewer goes on', async () => {
  const view = await load(await packet(3));
  const [first] = view.rows;
  assert.ok(first);
  Object.defineProperty(first, 'target', {
    get: () => {
      throw new RangeError('Invalid string length');
    },
  });
  const { url } = await serve(view);
  const broken = await get(`${url}receipts`);
  assert.equal(broken.status, 500);
  assert.match(broken.body, /^this page could not be made \(Invalid string length\)/);
  assert.equal((await get(`${url}style.css`)).status, 200);
  assert.equal((await get(`${url}policy`)).status, 200);
});

test('on port 80 the viewer answers a Host without the port, as browsers send it', async () => {
  const viewer = await serveViewer(await load(await packet(2)), { host: '127.0.0.1', port: 80 });
  viewers.push(viewer);
  assert.equal(new URL(viewer.url).port, '');
  assert.equal((await get(viewer.url, { host: '127.0.0.1' })).status, 200);
  assert.equal((await get(viewer.url, { host: 'localhost' })).status, 200);
  assert.equal((await get(viewer.url, { host: 'attacker.example' })).status, 421);
});

test('without a pinned key: self-consistent only, naming the key the packet signs with', async () => {
  const view = await load(await packet(3), []);
  assert.equal(view.judgement.verdict, 'self_consistent_only');
  const { body } = await get((await serve(view)).url);
  assert.match(body, /<h1>SELF-CONSISTENT ONLY<\/h1>/);
  assert.match(
    body,
    new RegExp(`it is signed by <code>${SAMPLE_KEY}</code>, a key the packet names itself`),
  );
  assert.match(body, /<tr><th>Pinned keys<\/th><td>none<\/td><\/tr>/);
});

test('pinned to another key: invalid, and no receipt is listed as verified', async () => {
  const view = await load(await packet(3), [KEY_A]);
  assert.equal(view.judgement.verdict, 'invalid');
  assert.equal(view.rows.length, 0);
  const { body } = await get((await serve(view)).url);
  assert.match(body, /<h1>INVALID<\/h1>/);
  // What was pinned is what the reviewer gave: a private key's seed, given by mistake, reads as one.
  assert.ok(!body.includes(KEY_A), 'the pinned key is not shown');
  assert.match(
    body,
    /<tr><th>Pinned keys<\/th><td>1 given \(not shown: it may be a secret key\)<\/td><\/tr>/,
  );
  assert.match(body, new RegExp(`signer_key ${SAMPLE_KEY} does not match the pinned key`));
});

test('evidence changed after signing: invalid at that receipt, only the receipts before it listed', async () => {
  const dir = await packet(20);
  const file = join(dir, 'evidence.jsonl');
  const text = readFileSync(file, 'utf8');
  assert.ok(text.includes('page=12\\u0026'));
  writeFileSync(file, text.replace('page=12\\u0026', 'page=13\\u0026'));
  const view = await load(dir);
  assert.equal(view.judgement.verdict, 'invalid');
  assert.equal(view.report.broken_at_seq, 12n);
  assert.equal(view.rows.length, 12);
  assert.equal(view.rows.at(-1)?.seq, 11n);
  assert.equal(statuses(view)['receipts.json'], 'unchecked');
  const { url } = await serve(view);
  const { body } = await get(url);
  assert.match(body, /<h1>INVALID<\/h1>/);
  assert.match(
    body,
    /The chain breaks at seq 12\. The receipts listed here are the ones accepted before the break/,
  );
  // Every page says so, not only the overview.
  assert.match((await get(`${url}receipts`)).body, /<h1>INVALID<\/h1>/);
  assert.match((await get(`${url}receipts/3`)).body, /<h1>INVALID<\/h1>/);
});

test('evidence cut before its session close: invalid, not sealed', async () => {
  const dir = await packet(5);
  const file = join(dir, 'evidence.jsonl');
  const lines = readFileSync(file, 'utf8').split('\n');
  // session open, 5 decisions, close, transcript root, checkpoint, ''.
  writeFileSync(file, `${lines.slice(0, 6).join('\n')}\n`);
  const view = await load(dir);
  assert.equal(view.judgement.verdict, 'invalid');
  assert.match(view.judgement.error ?? '', /chain is not sealed/);
  assert.equal(view.rows.length, 6);
});

test('an empty evidence.jsonl: no evidence, said on the page, nothing listed', async () => {
  const dir = await packet(2);
  writeFileSync(join(dir, 'evidence.jsonl'), '');
  const view = await load(dir);
  assert.equal(view.judgement.verdict, 'error');
  assert.equal(view.rows.length, 0);
  assert.deepEqual(view.checks[0], {
    file: 'evidence.jsonl',
    status: 'mismatch',
    detail: 'no receipts found',
  });
  const { url } = await serve(view);
  assert.match((await get(url)).body, /<h1>NO EVIDENCE<\/h1><p>no receipts found<\/p>/);
  assert.match((await get(`${url}receipts`)).body, /<p>0 of 0 receipts\.<\/p>/);
});

test('files that do not match the verified chain are named, each with what differs', async () => {
  const dir = await packet(5);
  writeFileSync(join(dir, 'policy.yaml'), 'mode: audit\n');
  const receipts = readFileSync(join(dir, 'receipts.json'), 'utf8');
  writeFileSync(
    join(dir, 'receipts.json'),
    receipts.replace('"verdict":"block"', '"verdict":"allow"'),
  );
  writeFileSync(
    join(dir, 'signer-public-key.pem'),
    encodePublicKeyPem(fromHex(KEY_A) ?? new Uint8Array()),
  );
  const report = JSON.parse(readFileSync(join(dir, 'verification-report.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(
    join(dir, 'verification-report.json'),
    JSON.stringify({ ...report, receipt_count: 99 }),
  );
  const view = await load(dir);
  // The receipts themselves still verify; the packet, as verify --packet judges it, does not.
  assert.equal(view.judgement.verdict, 'valid');
  assert.equal(view.verdict.verdict, 'invalid');
  assert.deepEqual(statuses(view), {
    ...ALL_MATCH,
    'receipts.json': 'mismatch',
    'policy.yaml': 'mismatch',
    'signer-public-key.pem': 'mismatch',
    'verification-report.json': 'mismatch',
    // Remade from a policy that no longer loads: not checked, and not ok either.
    'packet.json': 'unchecked',
    'summary.md': 'unchecked',
  });
  const detail = Object.fromEntries(view.checks.map((c) => [c.file, c.detail]));
  assert.match(
    detail['packet.json'] ?? '',
    /^needs policy\.yaml: does not load: policy\.yaml:1:1: .*version/,
  );
  assert.equal(detail['receipts.json'], 'is not the receipts of evidence.jsonl');
  assert.match(
    detail['policy.yaml'] ?? '',
    /^its SHA-256 is [0-9a-f]{64}; the receipts carry [0-9a-f]{64}$/,
  );
  assert.equal(
    detail['signer-public-key.pem'],
    `holds ${publicKeyHex(fromHex(KEY_A) ?? new Uint8Array())}; the receipts are signed by ${SAMPLE_KEY}`,
  );
  assert.equal(detail['verification-report.json'], 'receipt_count 99, verified 7');
  const viewer = await serve(view);
  const { body } = await get(viewer.url);
  assert.match(body, /4 of the packet's files do not match the verified evidence/);
  assert.equal(body.match(/<td>DOES NOT MATCH<\/td>/g)?.length, 4);
  assert.match(body, /<h1>INVALID<\/h1>\n<p>the packet&#39;s receipts\.json, policy\.yaml, /);
  assert.match(body, /<p>The receipts themselves verify \(VALID\); the files named under Packet/);
  assert.doesNotMatch(body, /<h1>VALID<\/h1>/);
  const policyPage = await get(`${viewer.url}policy`);
  assert.match(policyPage.body, /<span class="verdict invalid">INVALID<\/span>/);
  assert.match(policyPage.body, /<h1>INVALID<\/h1>/);
});

test('missing, FIFO and directory files are named; a report that disagrees on counts is a mismatch', async () => {
  const dir = await packet(5);
  const recordedRoot = (
    JSON.parse(readFileSync(join(dir, 'verification-report.json'), 'utf8')) as { root_hash: string }
  ).root_hash;
  assert.match(recordedRoot, /^[0-9a-f]{64}$/);
  const file = join(dir, 'evidence.jsonl');
  writeFileSync(file, readFileSync(file, 'utf8').replace('page=3\\u0026', 'page=4\\u0026'));
  rmSync(join(dir, 'policy-hash.txt'));
  rmSync(join(dir, 'signer-public-key.pem'));
  // Neither a directory nor a FIFO is read (a FIFO would be waited on for ever).
  rmSync(join(dir, 'receipts.json'));
  mkdirSync(join(dir, 'receipts.json'));
  rmSync(join(dir, 'policy.yaml'));
  execFileSync('mkfifo', [join(dir, 'policy.yaml')]);
  const view = await load(dir);
  const checks = Object.fromEntries(view.checks.map((c) => [c.file, c]));
  assert.deepEqual(checks['receipts.json'], {
    file: 'receipts.json',
    status: 'mismatch',
    detail: 'not a regular file',
  });
  assert.deepEqual(checks['policy.yaml'], {
    file: 'policy.yaml',
    status: 'mismatch',
    detail: 'not a regular file',
  });
  assert.equal(checks['policy-hash.txt']?.status, 'missing');
  assert.equal(checks['signer-public-key.pem']?.status, 'missing');
  // The chain broke at seq 3: 4 receipts examined, no final seq or root hash, not sealed.
  assert.deepEqual(checks['verification-report.json'], {
    file: 'verification-report.json',
    status: 'mismatch',
    detail: `verdict valid, verified invalid; trusted true, verified false; sealed true, verified false; receipt_count 7, verified 4; final_seq 6, verified null; root_hash ${recordedRoot}, verified null; start_time 2026-11-26T22:00:00Z, verified null; end_time 2026-11-26T22:00:00.042Z, verified null; policy_hash_match true, verified null; broken_at_seq null, verified 3; error null, verified seq 3: signature: signature verification failed`,
  });
});

test('a recorded verdict better than the one verified now is a mismatch', async () => {
  const dir = await packet(5);
  // The receipts and their counts are untouched; only the expected policy hash is wrong, so
  // the chain as the packet states it no longer verifies.
  writeFileSync(join(dir, 'policy-hash.txt'), `${'0'.repeat(64)}\n`);
  const view = await load(dir);
  assert.equal(view.judgement.verdict, 'invalid');
  const checks = Object.fromEntries(view.checks.map((c) => [c.file, c]));
  assert.equal(checks['policy-hash.txt']?.status, 'mismatch');
  assert.deepEqual(checks['verification-report.json'], {
    file: 'verification-report.json',
    status: 'mismatch',
    detail: `verdict valid, verified invalid; trusted true, verified false; policy_hash_match true, verified false; error null, verified policy hash mismatch: receipts carry ${SAMPLE_POLICY_HASH.slice(0, 43)}…`,
  });
});

test('view on the command line: usage, unreadable packets and non-loopback addresses are refused', async () => {
  const usage = await cli('view');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /view: give the Audit Packet directory first/);
  const nowhere = await cli('view', '/nonexistent/packet');
  assert.equal(nowhere.code, 2);
  assert.equal(
    nowhere.stderr,
    'pipelock-egress view: /nonexistent/packet is not a directory: give the Audit Packet directory\n',
  );
  // A directory name reaches the terminal escaped: it could hide the verdict after it.
  const hostile = await cli('view', '/nonexistent/pk\u001b[8mX\u202e');
  assert.match(hostile.stderr, /pk\\u001b\[8mX\\u202e is not a directory/);
  // eslint-disable-next-line no-control-regex -- the raw characters must not be there
  assert.doesNotMatch(hostile.stderr, /[\u001b\u202e]/);
  const empty = scratchDir('pe-view-empty-');
  const notPacket = await cli('view', empty);
  assert.equal(notPacket.code, 2);
  assert.match(
    notPacket.stderr,
    /holds no evidence\.jsonl: give the directory a run wrote its Audit Packet to/,
  );
  mkdirSync(join(empty, 'evidence.jsonl'));
  const notFile = await cli('view', empty);
  assert.equal(notFile.code, 2);
  assert.match(notFile.stderr, /evidence\.jsonl: not a regular file\n$/);
  const dir = await packet(2);
  const wide = await cli('view', dir, '--listen', '0.0.0.0:0');
  assert.equal(wide.code, 2);
  assert.match(
    wide.stderr,
    /view: --listen 0\.0\.0\.0:0: the viewer listens on a loopback address only/,
  );
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  const busy = await cli('view', dir, '--listen', `127.0.0.1:${port}`);
  taken.close();
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  const badKey = await cli('view', dir, '--public-key', 'nothex');
  assert.equal(badKey.code, 2);
  // What is neither a file nor a key is not printed: it may have been a private key.
  assert.match(
    badKey.stderr,
    /^pipelock-egress view: public key: the value \(not shown: it may be a secret key\) is neither an existing file .* nor a key /,
  );
  assert.doesNotMatch(badKey.stderr, /nothex/);
});

test("--policy-hash: the reviewer's own hash; a policy other than the one enforced is invalid on every page", async () => {
  const dir = await packet(5);
  const own = readFileSync(join(dir, 'policy-hash.txt'), 'utf8').trim();
  assert.equal(
    (await loadPacketView(dir, backend, [SAMPLE_KEY], { policyHash: own })).judgement.verdict,
    'valid',
  );
  const other = await loadPacketView(dir, backend, [SAMPLE_KEY], { policyHash: '0'.repeat(64) });
  assert.equal(other.judgement.verdict, 'invalid');
  assert.match(
    other.judgement.error ?? '',
    /policy hash mismatch: receipts carry [0-9a-f]{64}, expected 0{64}/,
  );
  assert.match((await get((await serve(other)).url)).body, /<h1>INVALID<\/h1>/);
  const unreadable = await cli('view', dir, '--policy-hash', join(dir, 'evidence'));
  assert.equal(unreadable.code, 2);
  assert.match(
    unreadable.stderr,
    /^pipelock-egress view: cannot read policy hash .*evidence: not a regular file\n$/,
  );
  // As verify reads it: a file holding no SHA-256 is refused before anything is served.
  const prefixed = join(scratchDir('pe-view-hash-'), 'reviewed-hash.txt');
  writeFileSync(prefixed, `${own.slice(1)}\n`);
  const malformed = await openPacket(
    'view',
    { dir, keyArgs: [SAMPLE_KEY], policyHashFile: prefixed },
    quietIo,
    loadPacketView,
  );
  assert.ok(!malformed.ok);
  assert.match(
    malformed.error,
    /^policy hash file .*reviewed-hash\.txt holds 63 hex digits where a SHA-256 has 64; expected the policy's SHA-256 as 64 hex digits/,
  );
});

/** `pipelock-egress view DIR` as a reviewer starts it: its ready line, and its stderr so far. */
async function startView(dir: string) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/index.ts',
      'view',
      dir,
      '--public-key',
      SAMPLE_KEY,
      '--listen',
      '127.0.0.1:0',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(JSON.parse(line) as Record<string, unknown>);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return { child, ready, stderr: () => stderr };
}

test(
  'pipelock-egress view DIR: a ready line with the address, pages served, SIGTERM exits 0',
  { timeout: 30_000 },
  async () => {
    const { child, ready, stderr } = await startView(await packet(3));
    assert.equal(ready['event'], 'listening');
    assert.equal(ready['verdict'], 'valid');
    assert.equal(ready['receipts'], 5);
    const page = await get(String(ready['url']));
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>VALID<\/h1>/);
    assert.match(stderr(), /verdict valid; open http:\/\/127\.0\.0\.1:[0-9]+\/[0-9a-f]{32}\/ /);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);

    // A packet whose files disagree with its chain: the ready line says so too.
    const damaged = await packet(3);
    rmSync(join(damaged, 'policy-hash.txt'));
    const second = await startView(damaged);
    try {
      assert.equal(second.ready['verdict'], 'invalid');
      assert.match((await get(String(second.ready['url']))).body, /<h1>INVALID<\/h1>/);
      assert.match(second.stderr(), /verdict invalid; open /);
    } finally {
      second.child.kill('SIGTERM');
    }
  },
);

test('html escapes interpolations and passes Html through; indentJson keeps every token', () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
  );
  assert.equal(
    escapeHtml('tab\tline\nzero\u200bwidth\u2066'),
    'tab\tline\nzero\\u200bwidth\\u2066',
  );
  assert.equal(
    html`<p>${'<b>'}${html`<i></i>`}${['<', html`>`]}${undefined}${7n}</p>`.text,
    '<p>&lt;b&gt;<i></i>&lt;>7</p>',
  );
  const compact = '{"a":[],"b":{},"c":[1,{"d":"x,{\\"y\\":[]}:"}],"n":18446744073709551615}';
  const indented = indentJson(compact);
  assert.equal(indented.replace(/\n\s*/g, '').replace(/": /g, '":'), compact);
  assert.match(indented, /"n": 18446744073709551615\n\}$/);
  assert.match(indented, /^\{\n {2}"a": \[\],\n {2}"b": \{\},/);
});

test('row queries: bad page numbers read as 1, a page past the end shows the last', async () => {
  const view = await load(await packet(3));
  assert.equal(rowQuery(new URLSearchParams('page=-2')).page, 1);
  assert.equal(rowQuery(new URLSearchParams('page=abc')).page, 1);
  const selected = selectRows(view.rows, { ...rowQuery(new URLSearchParams('')), page: 9 });
  assert.equal(selected.page, 1);
  assert.equal(selected.rows.length, 5);
});
