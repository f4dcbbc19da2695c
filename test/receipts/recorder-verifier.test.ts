// Whole-recorder checks that go beyond the entry hash chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReceiptFields } from '../../src/receipts/builder.js';
import { ReceiptChainBuilder } from '../../src/receipts/builder.js';
import { toHex, utf8 } from '../../src/receipts/bytes.js';
import {
  readEvidence,
  readEvidenceDirectory,
  verifyEvidence,
} from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { parseEntryLine } from '../../src/receipts/recorder.js';
import { RecorderWriter } from '../../src/receipts/recorder-writer.js';
import { SAMPLE_KEY, SAMPLE_SEED, sampleEvidence } from './sample-evidence.js';

const backend = createNodeBackend();
const seedA = backend.sha256(utf8('recorder-verifier-key-a'));
const seedB = backend.sha256(utf8('recorder-verifier-key-b'));
const keyA = toHex(backend.ed25519PublicKey(seedA));

const sample = [...sampleEvidence(3)].map((line) => line.text);

function verifyText(text: string, trustedKeys: string[] = [SAMPLE_KEY]) {
  const evidence = readEvidence(text);
  assert.ok(evidence.ok, evidence.ok ? '' : evidence.failure.message);
  return verifyEvidence(backend, evidence.value, { trustedKeys, wholeRecorder: true });
}

function fields(i: number): ReceiptFields {
  return {
    action_id: `a-${i}`,
    action_type: 'read',
    timestamp: `2026-11-26T22:00:0${i}Z`,
    principal: 'local',
    actor: 'agent',
    delegation_chain: null,
    target: 'https://example.test/',
    side_effect_class: 'external_read',
    reversibility: 'full',
    policy_hash: 'p',
    verdict: 'allow',
    transport: 'forward',
  };
}

test('the sample session verifies as a whole recorder, its seal anchored', () => {
  const report = verifyText(sample.join(''));
  assert.equal(report.error, undefined);
  assert.equal(report.recorder?.seal_anchored, true);
});

test('an entry field the entry hash does not cover is refused', () => {
  const lines = [...sample];
  const last = lines.length - 1;
  const original = lines[last] ?? '';
  lines[last] = original.replace('"transport":""', '"transport":"","note":"x"');
  const report = verifyText(lines.join(''));
  assert.match(report.error?.message ?? '', /field "note" is not covered by the entry hash/);
  // A case variant of a known field is refused as it is read: Go would read it as the field.
  lines[last] = original.replace('"transport":""', '"transport":"","Transport":"x"');
  const read = readEvidence(lines.join(''));
  assert.equal(read.ok, false);
  assert.match(
    read.ok ? '' : read.failure.message,
    /line 7: recorder entry field "Transport" differs from "transport" only in case/,
  );
});

test('a receipt after the transcript_root is refused', () => {
  const builder = new ReceiptChainBuilder(backend, seedA);
  const recorder = new RecorderWriter(backend, 'proxy', seedA);
  const first = builder.append(fields(0));
  let text = recorder.appendReceipt(first, '2026-11-26T22:00:00Z');
  text += recorder.appendTranscriptRoot('2026-11-26T22:00:01Z', {
    finalSeq: 0n,
    rootHash: first.hash,
    receiptCount: 1,
    startTime: first.receipt.action_record.timestamp,
    endTime: first.receipt.action_record.timestamp,
  });
  text += recorder.appendReceipt(builder.append(fields(1)), '2026-11-26T22:00:02Z');
  text += recorder.appendCheckpoint('2026-11-26T22:00:03Z');
  const report = verifyText(text, [keyA]);
  assert.match(report.error?.message ?? '', /entry seq 2: action_receipt after transcript_root/);
});

test('checkpoints signed by an endorsed successor key verify with only the root key pinned', () => {
  const builder = new ReceiptChainBuilder(backend, seedA);
  const recorder = new RecorderWriter(backend, 'proxy', seedB);
  const open = {
    run_nonce: 'run-a',
    open_nonce: 'o-a',
    recorder_session: 'proxy',
    policy_hash: 'p',
    signer_key_epoch: '1',
    heartbeat_seconds: 0n,
  };
  let text = recorder.appendReceipt(builder.openSession(fields(0), open), '2026-11-26T22:00:00Z');
  text += recorder.appendReceipt(builder.append(fields(1)), '2026-11-26T22:00:01Z');
  const { endorsement, first } = builder.rotate(
    seedB,
    fields(2),
    { ...open, run_nonce: 'run-b', open_nonce: 'o-b' },
    { sessionId: 'proxy', rotatedAt: '2026-11-26T22:00:02Z' },
  );
  text += recorder.appendReceipt(first, '2026-11-26T22:00:02Z');
  text += recorder.appendCheckpoint('2026-11-26T22:00:03Z');
  const evidence = readEvidence(text);
  assert.ok(evidence.ok);
  const report = verifyEvidence(backend, evidence.value, {
    trustedKeys: [keyA],
    endorsements: [endorsement],
    wholeRecorder: true,
  });
  assert.equal(report.error, undefined);
  assert.equal(report.recorder?.signed_checkpoints, 1);
});

test('a session_close whose transcript_root and checkpoint were removed is refused', () => {
  // The sample ends: session_close, transcript_root, signed checkpoint. Cutting the last two
  // keeps every entry hash intact.
  const cut = sample.slice(0, -2).join('');
  const report = verifyText(cut);
  assert.equal(report.valid, false);
  assert.equal(report.sealed, false);
  assert.match(
    report.error?.message ?? '',
    /the session_close is not followed by a transcript_root \(the seal was cut off or removed\)/,
  );
  // Waiving the checkpoint's signature does not waive the transcript_root.
  const evidence = readEvidence(cut);
  assert.ok(evidence.ok);
  const lenient = verifyEvidence(backend, evidence.value, {
    trustedKeys: [SAMPLE_KEY],
    wholeRecorder: true,
    allowUnanchoredSeal: true,
  });
  assert.match(lenient.error?.message ?? '', /not followed by a transcript_root/);
});

test('an unsealed chain (cut before its session_close) still verifies as a whole recorder', () => {
  const report = verifyText(sample.slice(0, -3).join(''));
  assert.equal(report.error, undefined);
  assert.equal(report.sealed, false);
});

test('complete, hash-linked entries after the sealing checkpoint are refused, in any file', () => {
  const last = parseEntryLine((sample.at(-1) ?? '').trimEnd());
  assert.ok(last.ok);
  const more = new RecorderWriter(backend, 'proxy', SAMPLE_SEED, last.value);
  const appended =
    more.append({
      ts: '2026-11-26T23:00:00Z',
      type: 'decision',
      transport: '',
      summary: 'post-seal note: run approved',
      detail: '{"note":"anything"}',
    }) + more.appendCheckpoint('2026-11-26T23:00:01Z');
  const seq = last.value.seq + 1n;
  const expected = new RegExp(
    `entry seq ${seq}: "decision" after the sealing checkpoint \\(a sealed recorder writes nothing more\\)`,
  );
  assert.match(verifyText(sample.join('') + appended).error?.message ?? '', expected);
  const shards = readEvidenceDirectory([
    { name: 'evidence-proxy-0.jsonl', content: sample.join('') },
    { name: 'evidence-proxy-100.jsonl', content: appended },
  ]);
  assert.ok(shards.ok);
  const report = verifyEvidence(backend, shards.value, {
    trustedKeys: [SAMPLE_KEY],
    wholeRecorder: true,
  });
  assert.equal(report.valid, false);
  assert.equal(report.sealed, false);
  assert.match(report.error?.message ?? '', expected);
});
