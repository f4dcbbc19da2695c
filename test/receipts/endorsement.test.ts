import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyChain } from '../../src/receipts/chain.js';
import type { RotationEndorsement } from '../../src/receipts/endorsement.js';
import {
  encodeRotationEndorsement,
  parseRotationEndorsement,
} from '../../src/receipts/endorsement.js';
import { readEvidence } from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { KEY_A, vectorText } from './vectors.js';

const backend = createNodeBackend();

function endorsement(name: string): RotationEndorsement {
  const parsed = parseRotationEndorsement(vectorText(name));
  assert.ok(parsed.ok);
  return parsed.value;
}

function rotatedReceipts(): Parameters<typeof verifyChain>[1] {
  const evidence = readEvidence(vectorText('g1-rotated-close-count-valid.jsonl'));
  assert.ok(evidence.ok);
  return evidence.value.receipts;
}

test('our encoding of an endorsement file parses back to the same endorsement', () => {
  const e = endorsement('g1-rotation-endorsement.json');
  const again = parseRotationEndorsement(encodeRotationEndorsement(e));
  assert.ok(again.ok);
  assert.deepEqual(again.value, e);
});

test('endorsement files with unknown keys, bad hex or non-canonical times are refused', () => {
  const text = vectorText('g1-rotation-endorsement.json');
  const cases: Array<[string, RegExp]> = [
    [text.replace('"version": 1,', '"version": 1, "extra": 1,'), /unknown field "extra"/],
    [text.replace('"version": 1,', '"version": 1, "version": 1,'), /duplicate key/],
    [text.replace('"version": 1', '"version": 1.0'), /cannot use number 1.0/],
    [
      text.replace(
        '"rotated_at": "2026-04-15T12:00:10Z"',
        '"rotated_at": "2026-04-15T14:00:10+02:00"',
      ),
      /not a canonical UTC/,
    ],
    [text.replace('"prior_final_seq": 2', '"prior_final_seq": "2"'), /expected an integer/],
    [text.replace(/"new_signer_key": "9/, '"new_signer_key": "A'), /64 lowercase hex/],
    [text + '{}', /unexpected data/],
  ];
  for (const [input, message] of cases) {
    const parsed = parseRotationEndorsement(input);
    assert.match(parsed.ok ? '' : parsed.failure.message, message);
  }
});

test('the same endorsement given twice matches one boundary twice', () => {
  const e = endorsement('g1-rotation-endorsement.json');
  const report = verifyChain(backend, rotatedReceipts(), {
    trustedKeys: [KEY_A],
    endorsements: [e, { ...e }],
    sessionId: 'conformance-session',
  });
  assert.match(
    report.error?.message ?? '',
    /multiple rotation endorsements match one receipt boundary/,
  );
});

test('an endorsement no boundary needs makes the chain fail', () => {
  const report = verifyChain(backend, rotatedReceipts(), {
    trustedKeys: [KEY_A],
    endorsements: [
      endorsement('g1-rotation-endorsement.json'),
      endorsement('g1-rotation-endorsement-2.json'),
    ],
    sessionId: 'conformance-session',
  });
  assert.equal(
    report.error?.message,
    'unused rotation endorsement does not match a required boundary',
  );
});

test('an endorsement for another session does not authorise the rotation', () => {
  const report = verifyChain(backend, rotatedReceipts(), {
    trustedKeys: [KEY_A],
    endorsements: [endorsement('g1-rotation-endorsement.json')],
  });
  assert.equal(report.valid, false);
  assert.equal(report.error?.class, 'rotation');
});
