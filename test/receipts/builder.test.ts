// Chains we build must verify, and every receipt must re-encode to exactly the bytes we wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACTION_TYPES, canonicalActionRecord } from '../../src/receipts/action-record.js';
import type { ActionRecord } from '../../src/receipts/action-record.js';
import type { BuiltReceipt, ReceiptFields, SessionOpenFields } from '../../src/receipts/builder.js';
import { ReceiptChainBuilder } from '../../src/receipts/builder.js';
import { utf8, toHex } from '../../src/receipts/bytes.js';
import { readEvidence, splitJsonl, verifyEvidence } from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { encodeReceipt, signReceipt } from '../../src/receipts/receipt.js';
import { parseEntryLine } from '../../src/receipts/recorder.js';
import { RecorderWriter } from '../../src/receipts/recorder-writer.js';
import { escapeNextLine } from '../../src/receipts/go-json.js';
import { verifyChain } from '../../src/receipts/chain.js';
import { parseJson } from '../../src/receipts/json.js';
import { decodeReceipt, parseReceipt } from '../../src/receipts/receipt.js';

const backend = createNodeBackend();
const seedA = backend.sha256(utf8('builder-test-key-a'));
const seedB = backend.sha256(utf8('builder-test-key-b'));
const keyA = toHex(backend.ed25519PublicKey(seedA));
const keyB = toHex(backend.ed25519PublicKey(seedB));

// Deterministic PRNG so a failure reproduces.
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const HOSTILE = [
  '<',
  '>',
  '&',
  '\u2028',
  '\u2029',
  '😀',
  '𝄞',
  '"',
  '\\',
  '/',
  '\u007f',
  'é',
  '\u0085',
  '\ufeff',
  '\ud800',
  ' ',
];
for (let c = 0; c < 0x20; c++) HOSTILE.push(String.fromCharCode(c));

function hostileString(rand: () => number, min = 0): string {
  const length = min + Math.floor(rand() * 12);
  let out = '';
  for (let i = 0; i < length; i++) {
    out +=
      rand() < 0.5
        ? (HOSTILE[Math.floor(rand() * HOSTILE.length)] ?? '')
        : String.fromCharCode(97 + Math.floor(rand() * 26));
  }
  return out;
}

function randomFields(rand: () => number, i: number): ReceiptFields {
  const maybe = <T>(value: T): T | undefined => (rand() < 0.5 ? value : undefined);
  const fields: Record<string, unknown> = {
    action_id: `act-${i}-${hostileString(rand)}`,
    action_type: ACTION_TYPES[Math.floor(rand() * ACTION_TYPES.length)],
    timestamp: `2026-11-26T22:${String(10 + (i % 50)).padStart(2, '0')}:0${i % 10}.${String(Math.floor(rand() * 1e9)).padStart(9, '0')}Z`,
    principal: hostileString(rand),
    actor: hostileString(rand),
    delegation_chain:
      rand() < 0.3 ? null : rand() < 0.5 ? [] : [hostileString(rand), hostileString(rand)],
    target: 'https://example.test/' + hostileString(rand, 1),
    side_effect_class: 'external_read',
    reversibility: 'full',
    policy_hash: toHex(backend.sha256(utf8(String(i % 3)))),
    verdict: rand() < 0.5 ? 'allow' : 'block',
    transport: 'forward',
    intent: maybe(hostileString(rand, 1)),
    data_classes_in: maybe([hostileString(rand, 1)]),
    method: maybe('GET'),
    layer: maybe(hostileString(rand, 1)),
    pattern: maybe(hostileString(rand, 1)),
    session_contaminated: maybe(true),
    recent_taint_sources: maybe([
      {
        url: hostileString(rand),
        kind: 'web',
        level: 200,
        timestamp: '2026-11-26T22:00:00.5+05:30',
        match_reason: hostileString(rand),
      },
    ]),
    redaction: maybe({
      profile: 'p',
      total_redactions: 3n,
      by_class: { '😀': 1n, z: 2n, '\uffff': 0n, [hostileString(rand)]: -4n },
    }),
    shield: maybe({}),
    contract_generation: maybe(2n ** 64n - 1n),
    request_id: maybe(hostileString(rand, 1)),
  };
  return Object.fromEntries(
    Object.entries(fields).filter(([, v]) => v !== undefined),
  ) as unknown as ReceiptFields;
}

const HOSTILE_EXT = [
  ' { "b" : [ 1.0 , -0 , 1E+2 ] , "a" : "<a&b>\u2028\\u0041\\/" , "10" : { } } ',
  'null',
  '"\u2029"',
  '[]',
];

function openFields(rand: () => number, runNonce: string): SessionOpenFields {
  return {
    run_nonce: runNonce,
    open_nonce: `open-${hostileString(rand)}`,
    recorder_session: 'proxy',
    policy_hash: 'policy',
    signer_key_epoch: hostileString(rand),
    heartbeat_seconds: -5n,
    containment_nonce: hostileString(rand),
  };
}

interface BuiltChain {
  readonly jsonl: string;
  readonly built: BuiltReceipt[];
  readonly head: string;
}

function buildChain(seed: number, count: number): BuiltChain {
  const rand = random(seed);
  const builder = new ReceiptChainBuilder(backend, seedA);
  const recorder = new RecorderWriter(backend, 'proxy', seedA);
  const built: BuiltReceipt[] = [];
  let jsonl = '';
  const add = (receipt: BuiltReceipt): void => {
    built.push(receipt);
    jsonl += recorder.appendReceipt(receipt, receipt.receipt.action_record.timestamp);
  };
  const control = (i: number): ReceiptFields => ({
    ...randomFields(rand, i),
    action_type: 'unclassified',
    actor: 'pipelock',
  });
  add(builder.openSession(control(0), openFields(rand, 'run-1'), HOSTILE_EXT[0]));
  for (let i = 1; i <= count; i++) {
    const ext = rand() < 0.3 ? HOSTILE_EXT[Math.floor(rand() * HOSTILE_EXT.length)] : undefined;
    add(builder.append(randomFields(rand, i), ext));
    if (i % 7 === 0)
      add(builder.heartbeat(control(i), { beat: BigInt(i), heartbeat_time: hostileString(rand) }));
    if (i % 11 === 0) jsonl += recorder.appendCheckpoint('2026-11-26T23:00:00Z');
  }
  add(builder.close(control(count + 1), { close_reason: 'graceful_shutdown' }));
  const first = built[0]?.receipt.action_record;
  const last = built[built.length - 1]?.receipt.action_record;
  jsonl += recorder.appendTranscriptRoot('2026-11-26T23:59:59.000000001+01:00', {
    finalSeq: last?.chain_seq ?? 0n,
    rootHash: builder.head,
    receiptCount: built.length,
    startTime: first?.timestamp ?? '',
    endTime: last?.timestamp ?? '',
  });
  jsonl += recorder.appendCheckpoint('2026-11-26T23:59:59Z');
  return { jsonl, built, head: builder.head };
}

for (const seed of [1, 2, 3, 4, 5]) {
  test(`a built chain with hostile strings verifies whole, pinned and sealed (seed ${seed})`, () => {
    const chain = buildChain(seed, 40);
    const evidence = readEvidence(utf8(chain.jsonl), 'built');
    assert.ok(evidence.ok, evidence.ok ? '' : evidence.failure.message);
    const report = verifyEvidence(backend, evidence.value, {
      trustedKeys: [keyA],
      wholeRecorder: true,
    });
    assert.equal(report.error, undefined);
    assert.equal(report.valid, true);
    assert.equal(report.sealed, true);
    assert.equal(report.receipt_count, chain.built.length);
    assert.equal(report.root_hash, chain.head);
    assert.equal(report.recorder?.seal_anchored, true);
    assert.deepEqual(report.signer_keys, [keyA]);
  });
}

test('every built receipt re-encodes to exactly the bytes written in its recorder entry (NEL escaped)', () => {
  const chain = buildChain(42, 60);
  // pipelock-verify-python splits lines as str.splitlines() does: nothing it breaks at may be
  // inside a line. Go escapes all but NEL; the writer escapes that one.
  assert.ok(
    chain.built.some((b) => b.json.includes('\u0085')),
    'the chain holds a raw NEL',
  );
  const breaks = ['\r', '\v', '\f', '\u001c', '\u001d', '\u001e', '\u0085', '\u2028', '\u2029'];
  for (const { text } of splitJsonl(chain.jsonl))
    for (const lineBreak of breaks) assert.ok(!text.includes(lineBreak), escape(lineBreak));
  const receiptLines = splitJsonl(chain.jsonl).filter((l) =>
    l.text.includes('"type":"action_receipt"'),
  );
  assert.equal(receiptLines.length, chain.built.length);
  receiptLines.forEach(({ text }, i) => {
    const entry = parseEntryLine(text);
    assert.ok(entry.ok);
    assert.equal(entry.value.detail, escapeNextLine(chain.built[i]?.json ?? ''));
    assert.ok(entry.value.detailNode);
    const decoded = decodeReceipt(entry.value.doc, entry.value.detailNode);
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.failure.message);
    assert.equal(encodeReceipt(decoded.value), chain.built[i]?.json);
  });
});

test('a receipt encoded again after others encodes to its own bytes', () => {
  const built = buildChain(9, 6).built;
  for (const i of [3, 0, 5, 5, 0, 2]) {
    const receipt = built[i]?.receipt;
    assert.ok(receipt);
    const record = canonicalActionRecord(receipt.action_record);
    assert.equal(encodeReceipt(receipt), built[i]?.json);
    assert.ok(built[i]?.json.includes(`"action_record":${record},`));
  }
});

test('a single changed byte in any receipt breaks the chain', () => {
  const chain = buildChain(7, 12);
  const lines = chain.jsonl.split('\n');
  const target = lines.findIndex((l, i) => i > 2 && l.includes('"action_receipt"'));
  const original = lines[target] ?? '';
  lines[target] = original.replace(
    /"verdict":"(allow|block)"/,
    (_m, v: string) => `"verdict":"${v === 'allow' ? 'block' : 'allow'}"`,
  );
  assert.notEqual(lines[target], original);
  const evidence = readEvidence(lines.join('\n'));
  assert.ok(evidence.ok);
  const report = verifyEvidence(backend, evidence.value, { trustedKeys: [keyA] });
  assert.equal(report.valid, false);
  assert.equal(report.error?.class, 'signature');
});

test('a chain whose tail was dropped still links but is no longer sealed', () => {
  const chain = buildChain(9, 10);
  const evidence = readEvidence(chain.jsonl);
  assert.ok(evidence.ok);
  const report = verifyChain(backend, evidence.value.receipts.slice(0, -1), {
    trustedKeys: [keyA],
  });
  assert.equal(report.valid, true);
  assert.equal(report.sealed, false);
});

test('a rotated chain verifies with the root key and the endorsement the builder returns', () => {
  const rand = random(11);
  const builder = new ReceiptChainBuilder(backend, seedA);
  const receipts = [builder.openSession(randomFields(rand, 0), openFields(rand, 'run-a'))];
  receipts.push(builder.append(randomFields(rand, 1)));
  const { endorsement, first } = builder.rotate(
    seedB,
    randomFields(rand, 2),
    openFields(rand, 'run-b'),
    {
      sessionId: 'proxy',
      rotatedAt: '2026-11-26T22:40:00.5Z',
    },
  );
  receipts.push(first, builder.append(randomFields(rand, 3)));
  receipts.push(builder.close(randomFields(rand, 4), { close_reason: 'done' }));
  const list = receipts.map((r) => r.receipt);

  const endorsed = verifyChain(backend, list, { trustedKeys: [keyA], endorsements: [endorsement] });
  assert.equal(endorsed.error, undefined);
  assert.equal(endorsed.sealed, true);
  assert.deepEqual(endorsed.signer_keys, [keyA, keyB]);
  assert.deepEqual(
    endorsed.segments.map((s) => [s.first_seq, s.last_seq]),
    [
      [0n, 1n],
      [0n, 2n],
    ],
  );

  const unendorsed = verifyChain(backend, list, { trustedKeys: [keyA] });
  assert.equal(unendorsed.error?.class, 'untrusted_key');
  const bothPinned = verifyChain(backend, list, { trustedKeys: [keyA, keyB] });
  assert.equal(bothPinned.valid, true);
});

/** A receipt as a verifier reads it: from its JSON, not the builder's object. */
function reread(built: BuiltReceipt) {
  const parsed = parseJson(built.json);
  assert.ok(parsed.ok);
  const decoded = decodeReceipt(parsed.doc, parsed.doc.root);
  assert.ok(decoded.ok);
  return decoded.value;
}

test('a restart or a rotation right after the session open (seq 0) binds to seq 0, and verifies', () => {
  const rand = random(12);
  const first = new ReceiptChainBuilder(backend, seedA);
  const open = first.openSession(randomFields(rand, 0), openFields(rand, 'run-a'));
  // The engine was killed after its session open: the next one resumes at seq 0. Go omits a
  // zero prior_chain_seq, so the restart's binding to seq 0 is spelled by its absence.
  const resumed = ReceiptChainBuilder.resume(backend, seedA, {
    finalSeq: 0n,
    rootHash: first.head,
  });
  const restart = resumed.openSession(randomFields(rand, 1), openFields(rand, 'run-b'));
  assert.ok(!restart.json.includes('prior_chain_seq'));
  const restarted = [open, restart, resumed.append(randomFields(rand, 2))];
  restarted.push(resumed.close(randomFields(rand, 3), { close_reason: 'done' }));
  const report = verifyChain(backend, restarted.map(reread), { trustedKeys: [keyA] });
  assert.equal(report.error, undefined);
  assert.equal(report.sealed, true);

  const rotating = new ReceiptChainBuilder(backend, seedA);
  const receipts = [rotating.openSession(randomFields(rand, 0), openFields(rand, 'run-a'))];
  const { endorsement, first: rotated } = rotating.rotate(
    seedB,
    randomFields(rand, 1),
    openFields(rand, 'run-b'),
    { sessionId: 'proxy', rotatedAt: '2026-11-26T22:40:00.5Z' },
  );
  receipts.push(rotated, rotating.close(randomFields(rand, 2), { close_reason: 'done' }));
  const rotation = verifyChain(backend, receipts.map(reread), {
    trustedKeys: [keyA],
    endorsements: [endorsement],
  });
  assert.equal(rotation.error, undefined);
  assert.equal(rotation.sealed, true);
});

test('a heartbeat or close speaks for the active run: one for a run a later open replaced breaks the chain', () => {
  for (const kind of ['heartbeat', 'session_close'] as const) {
    const rand = random(13);
    const builder = new ReceiptChainBuilder(backend, seedA);
    const openA = builder.openSession(randomFields(rand, 0), openFields(rand, 'run-a'));
    const legit = [
      openA,
      builder.append(randomFields(rand, 1)),
      builder.openSession(randomFields(rand, 2), openFields(rand, 'run-b')),
      kind === 'heartbeat'
        ? builder.heartbeat(randomFields(rand, 3), {
            beat: 1n,
            heartbeat_time: '2026-11-26T22:00:01Z',
          })
        : builder.close(randomFields(rand, 3), { close_reason: 'done' }),
    ].map((built) => built.receipt);
    assert.equal(verifyChain(backend, legit, { trustedKeys: [keyA] }).error, undefined, kind);
    // The last receipt signed again, speaking for run A (its position and links unchanged).
    const last = legit.pop();
    const control = last?.action_record.session_control;
    assert.ok(last && control);
    const nonces = {
      run_nonce: 'run-a',
      open_nonce: openA.receipt.action_record.session_control?.open?.open_nonce ?? '',
    };
    const { heartbeat, close } = control;
    const lying = signReceipt(backend, seedA, {
      ...last.action_record,
      run_nonce: 'run-a',
      session_control: {
        ...control,
        ...(heartbeat ? { heartbeat: { ...heartbeat, ...nonces } } : {}),
        ...(close ? { close: { ...close, ...nonces } } : {}),
      },
    });
    const report = verifyChain(backend, [...legit, lying], { trustedKeys: [keyA] });
    assert.equal(report.error?.class, 'lifecycle', kind);
    assert.equal(
      report.error?.message,
      `seq 3: ${kind} run_nonce does not match active session_open`,
    );
    assert.equal(report.sealed, false);
  }
});

test('the builder refuses a record Pipelock would reject', () => {
  const builder = new ReceiptChainBuilder(backend, seedA);
  const fields = randomFields(random(3), 0);
  assert.throws(
    () => builder.append({ ...fields, action_type: 'browse' }),
    /invalid action_type "browse"/,
  );
  assert.throws(
    () => builder.append({ ...fields, timestamp: '2026-11-26 22:00:00' }),
    /not RFC 3339/,
  );
  assert.throws(() => builder.append(fields, '{"a":}'), /ext is not valid JSON/);
});

test('an array of strings holding something else names the item it found', () => {
  const parsed = parseReceipt(
    JSON.stringify({ version: 1, action_record: { delegation_chain: ['a', 7] } }),
  );
  assert.equal(parsed.ok, false);
  assert.match(
    parsed.ok ? '' : parsed.failure.message,
    /action_record\.delegation_chain: expected a string at index 1, got number$/,
  );
});

test('a JS timestamp with milliseconds is signed in the spelling Go prints', () => {
  const builder = new ReceiptChainBuilder(backend, seedA);
  const built = builder.append({
    ...randomFields(random(5), 0),
    timestamp: '2026-11-26T22:00:00.120Z',
  });
  assert.match(built.json, /"timestamp":"2026-11-26T22:00:00.12Z"/);
  const parsed = parseJson(built.json);
  assert.ok(parsed.ok);
  const decoded = decodeReceipt(parsed.doc, parsed.doc.root);
  assert.ok(decoded.ok);
  const record: ActionRecord = decoded.value.action_record;
  assert.equal(record.timestamp, '2026-11-26T22:00:00.12Z');
  assert.equal(verifyChain(backend, [decoded.value], { trustedKeys: [keyA] }).valid, true);
});

test('whole-recorder verification wants the transcript_root anchored by a signed checkpoint', () => {
  const builder = new ReceiptChainBuilder(backend, seedA);
  const recorder = new RecorderWriter(backend, 'proxy');
  const built = builder.append(randomFields(random(8), 0));
  let jsonl = recorder.appendReceipt(built, '2026-11-26T22:00:00Z');
  jsonl += recorder.appendTranscriptRoot('2026-11-26T22:00:01Z', {
    finalSeq: 0n,
    rootHash: built.hash,
    receiptCount: 1,
    startTime: built.receipt.action_record.timestamp,
    endTime: built.receipt.action_record.timestamp,
  });
  jsonl += recorder.appendCheckpoint('2026-11-26T22:00:02Z');
  const evidence = readEvidence(jsonl);
  assert.ok(evidence.ok);
  const strict = verifyEvidence(backend, evidence.value, {
    trustedKeys: [keyA],
    wholeRecorder: true,
  });
  assert.match(strict.error?.message ?? '', /not followed by a signed checkpoint/);
  const lenient = verifyEvidence(backend, evidence.value, {
    trustedKeys: [keyA],
    wholeRecorder: true,
    allowUnanchoredSeal: true,
  });
  assert.equal(lenient.valid, true);
  assert.equal(lenient.recorder?.checkpoint_count, 1);
});

test('the recorder writer refuses a NUL that v2 readers would reject', () => {
  const recorder = new RecorderWriter(backend, 'proxy');
  assert.throws(
    () =>
      recorder.append({
        ts: '2026-11-26T22:00:00Z',
        type: 'decision',
        transport: 'a\0b',
        summary: '',
        detail: '"\\u0000"',
      }),
    /transport cannot contain NUL/,
  );
});
