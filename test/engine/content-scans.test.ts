import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import {
  ContentScans,
  ENGINE_STOPPING,
  INLINE_SCAN_BYTES,
  type PlacedText,
  type ScannerSetup,
} from '../../src/engine/dlp/content-scans.js';
import { decodedBodyViews, textViews } from '../../src/engine/dlp/content-views.js';
import { BUILTIN_DETECTORS } from '../../src/engine/dlp/detectors.js';
import { createSecretScanner, type BoundSecret } from '../../src/engine/dlp/secret-scan.js';
import { parseDestination } from '../../src/policy/destination.js';
import { targetOf } from './target-of.js';
import type { RequestTarget } from '../../src/policy/target.js';
import { noise } from './encodings.js';

function allowedAt(destination: string) {
  const parsed = parseDestination(destination);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.destination;
}

const TOKEN = `ghp_${'a1B2c3D4e5'.repeat(3)}a1B2c3`;
const DEPLOY_KEY = 'deploy-key-7d41c9e2b8';
const SETUP: ScannerSetup = {
  detectors: BUILTIN_DETECTORS,
  secrets: [{ env: 'DEPLOY_KEY', value: DEPLOY_KEY, allow: [allowedAt('deploy.example.test')] }],
  patternScanMs: 1_000,
};

function contentScans(setup: ScannerSetup = SETUP): ContentScans {
  return new ContentScans(
    createSecretScanner(setup.detectors, setup.secrets, setup.patternScanMs),
    setup,
  );
}

/** Text past the inline size with `inside` in the middle. */
function large(inside: string): Buffer {
  const filler = noise(INLINE_SCAN_BYTES).toString('hex');
  return Buffer.from(`{"a":"${filler}","b":"${inside}","c":"${filler}"}`);
}

test('a body past the inline size is judged in a thread exactly as in place', async () => {
  const scans = contentScans();
  const inline = createSecretScanner(SETUP.detectors, SETUP.secrets, SETUP.patternScanMs);
  const api = targetOf('https://api.example.test/upload');
  const deploy = targetOf('https://deploy.example.test/upload');
  try {
    const cases: [Buffer, Buffer, RequestTarget, boolean][] = [
      [large('nothing to see'), large('nothing to see'), api, true],
      [large(TOKEN), large(TOKEN), api, true],
      [large(TOKEN), large(TOKEN), api, false],
      [large(Buffer.from(TOKEN).toString('base64')), large('x'), api, true],
      [large(DEPLOY_KEY), large(DEPLOY_KEY), api, false],
      [large(DEPLOY_KEY), large(DEPLOY_KEY), deploy, false],
    ];
    // Compressed as sent, the finding only in what it decodes to.
    const compressed = large(encodeURIComponent(TOKEN));
    cases.push([gzipSync(compressed), compressed, api, true]);
    const found = [];
    for (const [sent, decoded, to, detectors] of cases) {
      const threaded = await scans.scanBody(sent, decoded, to, detectors);
      const views = decodedBodyViews(sent, decoded);
      assert.deepEqual(threaded, inline.scanContent(views, to, detectors));
      found.push(threaded?.detector);
    }
    // The cases tell apart what they should: a finding is not the same everywhere.
    assert.deepEqual(found, [
      undefined,
      'github-token',
      undefined,
      'github-token',
      'secret:DEPLOY_KEY',
      undefined,
      'github-token',
    ]);
  } finally {
    await scans.close();
  }
});

test('texts past the inline size (a WebSocket message and its seam) are judged in a thread exactly as in place', async () => {
  const scans = contentScans();
  const inline = createSecretScanner(SETUP.detectors, SETUP.secrets, SETUP.patternScanMs);
  const api = targetOf('wss://api.example.test/socket');
  try {
    const message = (inside: string) => large(inside).toString();
    const cases: [PlacedText[], boolean][] = [
      [[{ text: message('quiet'), where: 'WebSocket message' }], true],
      [[{ text: message(TOKEN), where: 'WebSocket message' }], true],
      [[{ text: message(TOKEN), where: 'WebSocket message' }], false],
      [[{ text: message(encodeURIComponent(DEPLOY_KEY)), where: 'WebSocket message' }], false],
      [
        [
          { text: message('quiet'), where: 'WebSocket message' },
          { text: TOKEN, where: 'WebSocket messages joined' },
        ],
        true,
      ],
    ];
    const found = [];
    for (const [texts, detectors] of cases) {
      const threaded = await scans.scanTexts(texts, api, detectors);
      const views = texts.flatMap(({ text, where }) => textViews(text, where));
      assert.deepEqual(threaded, inline.scanContent(views, api, detectors));
      found.push([threaded?.detector, threaded?.where]);
    }
    assert.deepEqual(found, [
      [undefined, undefined],
      ['github-token', 'WebSocket message'],
      [undefined, undefined],
      ['secret:DEPLOY_KEY', 'WebSocket message'],
      ['github-token', 'WebSocket messages joined'],
    ]);
  } finally {
    await scans.close();
  }
});

test('a scanning thread that fails refuses the body or message as unscannable, and so does every retry', async () => {
  // A bound value the thread's scanner cannot be made from: the thread dies as it starts.
  const broken = { env: 'BROKEN', value: 42, allow: [] } as unknown as BoundSecret;
  const setup: ScannerSetup = { ...SETUP, secrets: [broken] };
  const scans = new ContentScans(createSecretScanner(SETUP.detectors, [], 1_000), setup);
  const body = large('nothing to see');
  const to = targetOf('https://api.example.test/upload');
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      const finding = await scans.scanBody(body, body, to, true);
      assert.equal(finding?.detector, 'unscannable');
      assert.match(finding.failure ?? '', /^the scanning thread failed: /);
      assert.equal(finding.where, 'body');
    }
    const message = [{ text: body.toString(), where: 'WebSocket message' }];
    const refused = await scans.scanTexts(message, to, true);
    assert.equal(refused?.detector, 'unscannable');
    assert.equal(refused.where, 'WebSocket message');
    // A small body never needs the thread: it is scanned in place.
    const small = Buffer.from('nothing to see');
    assert.equal(await scans.scanBody(small, small, to, true), undefined);
  } finally {
    await scans.close();
  }
});

test('scans waiting or running when the engine stops are refused, and none starts after', async () => {
  const scans = contentScans();
  const to = targetOf('https://api.example.test/upload');
  const body = large('nothing to see');
  const small = Buffer.from('nothing to see');
  const pending = [scans.scanBody(body, body, to, true), scans.scanBody(body, body, to, true)];
  await scans.close();
  for (const finding of [
    ...(await Promise.all(pending)),
    await scans.scanBody(body, body, to, true),
    await scans.scanBody(small, small, to, true),
    await scans.scanTexts([{ text: 'hello', where: 'WebSocket message' }], to, true),
  ]) {
    assert.equal(finding?.detector, 'unscannable');
    assert.equal(finding.failure, ENGINE_STOPPING);
  }
});

test('a thread that ends while idle is dropped: the next scan gets a new one and settles', async () => {
  const scans = contentScans();
  const to = targetOf('https://api.example.test/upload');
  const clean = large('nothing to see');
  const leak = large(TOKEN);
  try {
    assert.equal(await scans.scanBody(clean, clean, to, true), undefined);
    // Nothing outside the engine can end its idle thread; the test reaches in to do it.
    const [idle] = (scans as unknown as { idle: Worker[] }).idle;
    assert.ok(idle, 'the first scan left its thread idle');
    await idle.terminate();
    assert.equal((await scans.scanBody(leak, leak, to, true))?.detector, 'github-token');
  } finally {
    await scans.close();
  }
});
