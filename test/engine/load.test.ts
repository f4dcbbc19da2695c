import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { main } from '../../src/cli/main.js';
import {
  assertNoViolations,
  assertValid,
  cleanup,
  decisions,
  EvidenceTail,
  readEvidenceDir,
  startEngine,
  startOrigin,
} from './helpers.js';

const TOTAL = 10_000;
const CONCURRENCY = 100;

test('10,000 requests at concurrency 100: one receipt each, written before the origin saw the request, chain verifies', async () => {
  const early: string[] = [];
  let checked = 0;
  const box: { tail?: EvidenceTail } = {};
  const origin = await startOrigin((req, res) => {
    const token = /\/r\/([0-9]+)/.exec(req.url ?? '')?.[1] ?? '';
    const tail = box.tail;
    if (tail) {
      // Only re-read the file when the token is not known yet (bytes are read once each).
      if (!tail.tokens.has(token)) tail.poll();
      checked++;
      if (!tail.tokens.has(token)) early.push(token);
    }
    req.resume();
    req.on('end', () => res.end(token));
  });
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
default_deny: true
`,
    limits: { maxRequestsPerUpstream: 128 },
  });
  box.tail = new EvidenceTail(proxy.dir);
  const agent = new ProxyAgent({
    uri: proxy.proxyUrl,
    proxyTunnel: false,
    connections: CONCURRENCY,
  });
  try {
    let next = 0;
    const statuses = new Map<number, number>();
    const mismatched: number[] = [];
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= TOTAL) return;
        const response = await request(`http://api.example.test:${origin.port}/r/${i}`, {
          method: i % 10 === 0 ? 'POST' : 'GET',
          ...(i % 10 === 0 ? { body: `payload-${i}` } : {}),
          dispatcher: agent,
        });
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        if ((await response.body.text()) !== String(i)) mismatched.push(i);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.deepEqual([...statuses], [[200, TOTAL]]);
    assert.deepEqual(mismatched, []);
    assert.equal(checked, TOTAL);
    assert.deepEqual(early, [], 'requests reached the origin before their receipt');
    await proxy.stop();

    const evidence = readEvidenceDir(proxy.dir);
    assertValid(evidence, true);
    const perRequest = new Map<string, number>();
    for (const receipt of decisions(evidence.receipts)) {
      const token = /\/r\/([0-9]+)$/.exec(receipt.action_record.target)?.[1] ?? 'none';
      perRequest.set(token, (perRequest.get(token) ?? 0) + 1);
      assert.equal(receipt.action_record.verdict, 'allow');
    }
    assert.equal(perRequest.size, TOTAL);
    assert.ok(
      [...perRequest.values()].every((n) => n === 1),
      'exactly one decision receipt per request',
    );
    assert.equal(evidence.receipts.length, TOTAL + 2, 'plus session open and close');
    assert.ok(evidence.files.length >= 2, 'the evidence rotated');

    // The CLI verifier agrees.
    let out = '';
    let err = '';
    const code = await main(
      [
        'verify',
        '--receipt-chain',
        proxy.dir,
        '--public-key',
        proxy.writer.signerKey,
        '--require-sealed',
        '--whole-recorder',
      ],
      { out: (t) => void (out += t), err: (t) => void (err += t), readFile: (p) => readFile(p) },
    );
    assert.equal(code, 0, `${out}\n${err}`);
    assert.match(out, /CHAIN VALID/);
    assertNoViolations();
  } finally {
    await agent.close();
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});
