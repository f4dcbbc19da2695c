import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyChain } from '../../src/receipts/chain.js';
import { readEvidence } from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { parseReceipt, verifyReceipt } from '../../src/receipts/receipt.js';
import type { Receipt } from '../../src/receipts/receipt.js';
import { KEY_A, vectorText } from './vectors.js';

const backend = createNodeBackend();
const OTHER_KEY = '970955695494cf0fb3109671e673ecaeb0a161e834861a325b97b0656e3c9cd1';

function validChain(): Receipt[] {
  const evidence = readEvidence(vectorText('valid-chain.jsonl'));
  assert.ok(evidence.ok);
  return [...evidence.value.receipts];
}

test('a chain verified without a pinned key is self-consistent only', () => {
  const report = verifyChain(backend, validChain());
  assert.equal(report.valid, true);
  assert.equal(report.pinned, false);
  assert.deepEqual(report.signer_keys, [KEY_A]);
  assert.deepEqual(report.policy_hashes, [
    'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  ]);
  assert.equal(report.start_time, '2026-04-15T12:00:00Z');
  assert.equal(report.end_time, '2026-04-15T12:00:04Z');
});

test('a chain signed by another key than the pinned one is untrusted at seq 0', () => {
  const report = verifyChain(backend, validChain(), { trustedKeys: [OTHER_KEY] });
  assert.equal(report.error?.class, 'untrusted_key');
  // A pinned key is what the caller gave: a private key's seed, given by mistake, reads as one.
  assert.equal(
    report.error?.message,
    `seq 0: signer_key ${KEY_A} does not match the pinned key (1 given; not shown: it may be a secret key)`,
  );
  assert.equal(report.broken_at_seq, 0n);
  const twoPinned = verifyChain(backend, validChain(), {
    trustedKeys: [OTHER_KEY, 'ab'.repeat(32)],
  });
  assert.equal(twoPinned.error?.class, 'untrusted_key');
  assert.equal(
    twoPinned.error?.message,
    `seq 0: signer key ${KEY_A} is not in the trusted set (2 pinned keys given; not shown: one may be a secret key)`,
  );
});

test('no receipts is a failure, not a vacuous success', () => {
  const report = verifyChain(backend, []);
  assert.equal(report.valid, false);
  assert.equal(report.error?.class, 'empty');
});

test('deleting a middle receipt is a seq gap; a duplicate is a link failure; dropping the head fails genesis', () => {
  const chain = validChain();
  const deleted = verifyChain(backend, [...chain.slice(0, 2), ...chain.slice(3)], {
    trustedKeys: [KEY_A],
  });
  assert.equal(deleted.error?.message, 'seq 3: seq gap: expected 2, got 3');
  const duplicated = verifyChain(backend, [...chain.slice(0, 3), ...chain.slice(2)], {
    trustedKeys: [KEY_A],
  });
  assert.equal(duplicated.valid, false);
  assert.equal(duplicated.broken_at_seq, 2n);
  const headless = verifyChain(backend, chain.slice(1), { trustedKeys: [KEY_A] });
  assert.equal(headless.error?.class, 'genesis');
  assert.equal(headless.error?.message, 'seq 1: root receipt segment must start at chain_seq 0');
});

function receiptWith(
  mutate: (json: Record<string, unknown>) => void,
): ReturnType<typeof parseReceipt> {
  const json = JSON.parse(vectorText('valid-single.json')) as Record<string, unknown>;
  mutate(json);
  return parseReceipt(JSON.stringify(json));
}

test('unknown keys, case variants and non-integer numbers are malformed receipts', () => {
  const record = (json: Record<string, unknown>): Record<string, unknown> =>
    json['action_record'] as Record<string, unknown>;
  const cases: Array<[(json: Record<string, unknown>) => void, RegExp]> = [
    [(j) => (j['record_type'] = 'x'), /unknown field "record_type"/],
    [(j) => (record(j)['Target'] = 'x'), /unknown field "Target"/],
    [(j) => (record(j)['surprise'] = 1), /unknown field "surprise"/],
    [(j) => (record(j)['chain_seq'] = true), /chain_seq: expected an integer/],
    [(j) => (record(j)['redaction'] = { by_class: { a: 'x' } }), /by_class\.a/],
    [
      (j) => (record(j)['session_control'] = { kind: 'heartbeat', heartbeat: { beat: -1 } }),
      /beat: cannot use number -1 as uint64/,
    ],
    [(j) => (record(j)['timestamp'] = '2026-04-15 12:00:00Z'), /parsing time/],
  ];
  for (const [mutate, message] of cases) {
    const parsed = receiptWith(mutate);
    assert.equal(parsed.ok, false, String(message));
    if (!parsed.ok) {
      assert.equal(parsed.failure.class, 'malformed');
      assert.match(parsed.failure.message, message);
    }
  }
  const fraction = parseReceipt(
    vectorText('valid-single.json').replace('"chain_seq": 0', '"chain_seq": 0.0'),
  );
  assert.match(fraction.ok ? '' : fraction.failure.message, /cannot use number 0.0 as uint64/);
});

test('record rules come with Pipelock messages, before the signature is looked at', () => {
  const cases: Array<[(json: Record<string, unknown>) => void, string]> = [
    [(j) => (j['version'] = 2), 'unsupported receipt version 2 (expected 1)'],
    [
      (j) => ((j['action_record'] as Record<string, unknown>)['action_type'] = 'browse'),
      'invalid action record: invalid action_type "browse"',
    ],
    [
      (j) => delete (j['action_record'] as Record<string, unknown>)['target'],
      'invalid action record: target is required',
    ],
    [
      (j) =>
        ((j['action_record'] as Record<string, unknown>)['session_control'] = {
          kind: 'heartbeat',
          close: {},
        }),
      'invalid action record: session_control kind "heartbeat" does not match its payload',
    ],
    [
      (j) =>
        ((j['action_record'] as Record<string, unknown>)['session_control'] = {
          kind: 'pause',
          open: {},
        }),
      'invalid action record: unknown session_control kind "pause"',
    ],
    [(j) => (j['signature'] = ''), 'receipt has no signature'],
    [
      (j) => (j['signature'] = 'ed25519:zz'),
      "decoding signature: encoding/hex: invalid byte: U+007A 'z'",
    ],
    [(j) => (j['signature'] = 'abcd'), 'invalid signature format: missing ed25519: prefix'],
    [(j) => (j['signer_key'] = 'abcd'), 'invalid signer_key length: got 2, want 32'],
  ];
  for (const [mutate, message] of cases) {
    const parsed = receiptWith(mutate);
    assert.ok(parsed.ok);
    const verified = verifyReceipt(backend, parsed.value);
    assert.equal(verified.ok ? '' : verified.failure.message, message);
  }
});

test('a null optional field is Go zero value: it leaves the signed bytes unchanged', () => {
  const parsed = receiptWith(
    (j) => ((j['action_record'] as Record<string, unknown>)['intent'] = null),
  );
  assert.ok(parsed.ok);
  assert.equal(verifyReceipt(backend, parsed.value, [KEY_A]).ok, true);
});
