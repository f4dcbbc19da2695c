import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evidenceFileOrder,
  readEvidence,
  readEvidenceDirectory,
  splitJsonl,
  verifyEvidence,
} from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { parseEntryLine } from '../../src/receipts/recorder.js';
import { KEY_A, vectorBytes, vectorText } from './vectors.js';
import { SAMPLE_KEY, sampleEvidence } from './sample-evidence.js';

const backend = createNodeBackend();

test('JSONL splits on \\n only, strips one \\r and skips blank lines', () => {
  const lines = splitJsonl('{"a":"x\u2028y\u0085z"}\r\n\n  \n{"b":1}');
  assert.deepEqual(lines, [
    { line: 1, text: '{"a":"x\u2028y\u0085z"}' },
    { line: 4, text: '{"b":1}' },
  ]);
  // Blank as Go's TrimSpace sees it: U+0085 and NBSP are white space, a byte order mark is not.
  assert.deepEqual(splitJsonl('\u0085\n\u00a0\t\n\ufeff\n{}'), [
    { line: 3, text: '\ufeff' },
    { line: 4, text: '{}' },
  ]);
});

test('a recorder entry key that differs from a known one only in case is malformed (Go would read it as that one)', () => {
  for (const [line, key, known] of [
    ['{"v":1,"seq":0,"Type":"action_receipt"}', 'Type', 'type'],
    ['{"v":1,"\u017feq":0}', '\u017feq', 'seq'],
    ['{"v":1,"seq":0,"\u212aind":"x","prev_HASH":""}', 'prev_HASH', 'prev_hash'],
  ] as const) {
    const entry = parseEntryLine(line);
    assert.equal(entry.ok, false, line);
    if (!entry.ok)
      assert.equal(
        entry.failure.message,
        `recorder entry field "${key}" differs from "${known}" only in case`,
      );
  }
  assert.equal(parseEntryLine('{"v":1,"seq":0,"type":"x","extra":1}').ok, true);
});

test('evidence files are ordered by their sequence number, not lexicographically', () => {
  const names = [
    'evidence-proxy-10000.jsonl',
    'evidence-proxy-9999.jsonl',
    'evidence-proxy-0.jsonl',
    'evidence-other-1.jsonl',
    'evidence-proxy-x.jsonl',
    'evidence-proxy-20000.raw.enc',
    'evidence-proxy-18446744073709551615.jsonl',
  ];
  assert.deepEqual(evidenceFileOrder(names), [
    'evidence-proxy-0.jsonl',
    'evidence-proxy-9999.jsonl',
    'evidence-proxy-10000.jsonl',
    'evidence-proxy-18446744073709551615.jsonl',
  ]);
  assert.deepEqual(evidenceFileOrder(names, 'other'), ['evidence-other-1.jsonl']);
});

test('a chain split across files in a directory verifies as one', () => {
  const lines = vectorText('valid-chain.jsonl').split('\n').filter(Boolean);
  const files = [
    { name: 'evidence-proxy-3.jsonl', content: lines.slice(3).join('\n') + '\n' },
    { name: 'evidence-proxy-0.jsonl', content: lines.slice(0, 3).join('\n') + '\n' },
    { name: 'notes.txt', content: 'ignored' },
  ];
  const evidence = readEvidenceDirectory(files);
  assert.ok(evidence.ok);
  const report = verifyEvidence(backend, evidence.value, {
    trustedKeys: [KEY_A],
    wholeRecorder: true,
  });
  assert.equal(report.valid, true);
  assert.equal(report.receipt_count, 5);
  assert.equal(report.recorder?.entry_count, 5);
});

test('a receipts.json array, a bare-receipt JSONL and a single receipt all read', () => {
  const single = vectorText('valid-single.json');
  const compact = JSON.stringify(JSON.parse(single));
  for (const text of [`[${single}]`, `${compact}\n`, single]) {
    const evidence = readEvidence(text);
    assert.ok(evidence.ok, text.slice(0, 40));
    assert.equal(evidence.value.receipts.length, 1);
    assert.equal(verifyEvidence(backend, evidence.value, { trustedKeys: [KEY_A] }).valid, true);
  }
});

test('one receipt on its own is judged alone, as Pipelock does, wherever it stood in its chain', () => {
  const details = [...sampleEvidence(3)]
    .map((line) => parseEntryLine(line.text.trimEnd()))
    .flatMap((entry) =>
      entry.ok && entry.value.type === 'action_receipt' ? [entry.value.detail] : [],
    );
  const judge = (text: string, keys = [SAMPLE_KEY]) => {
    const evidence = readEvidence(text);
    assert.ok(evidence.ok);
    return verifyEvidence(backend, evidence.value, { trustedKeys: keys });
  };
  const middle = details[2] ?? '';
  const report = judge(middle);
  assert.equal(report.valid, true, report.error?.message);
  assert.equal(report.final_seq, 2n);
  assert.equal(report.receipt_count, 1);
  // Alone, a session_close seals nothing; a wrong key, or an edited receipt, is refused.
  const close = details.at(-1) ?? '';
  assert.match(close, /session_close/);
  assert.deepEqual([judge(close).valid, judge(close).sealed], [true, false]);
  assert.equal(judge(middle, [KEY_A]).valid, false);
  assert.equal(judge(middle.replace('"verdict":"allow"', '"verdict":"block"')).valid, false);
  // The same receipt in a one-element array, or followed by others, is a chain from seq 0.
  assert.equal(judge(`[${middle}]`).valid, false);
  assert.equal(judge(`${middle}\n${details[3] ?? ''}\n`).valid, false);
});

test('invalid UTF-8 and malformed lines are reported with the line number', () => {
  const bad = readEvidence(new Uint8Array([0x7b, 0xff, 0x7d]), 'x.jsonl');
  assert.match(bad.ok ? '' : bad.failure.message, /x\.jsonl: not valid UTF-8/);
  const lines = vectorText('valid-chain.jsonl').split('\n');
  lines[2] = '{"v":1,';
  const broken = readEvidence(lines.join('\n'), 'chain.jsonl');
  assert.match(broken.ok ? '' : broken.failure.message, /chain\.jsonl: line 3: invalid JSON/);
});

test('a receipt written in another spelling than the one signed names its chain_seq', () => {
  const lines = vectorText('valid-chain.jsonl').split('\n');
  const at = lines.findIndex((line) => line.includes('"verdict":"allow"'));
  const seq = /"chain_seq":(\d+)/.exec(lines[at] ?? '')?.[1] ?? '';
  lines[at] = (lines[at] ?? '').replace('"verdict":"allow"', '"verdict":"\\u0061llow"');
  const read = readEvidence(lines.join('\n'), 'chain.jsonl');
  assert.ok(!read.ok);
  assert.match(read.failure.message, /receipt bytes differ from the encoding that was signed/);
  assert.equal(read.failure.seq, BigInt(seq));
});

test('whole-recorder verification catches an edited entry that the receipt chain ignores', () => {
  const text = vectorBytes('valid-chain.jsonl')
    .toString('utf8')
    .replace('"summary":"receipt: allow write https"', '"summary":"receipt: edited"');
  const evidence = readEvidence(text);
  assert.ok(evidence.ok);
  assert.equal(verifyEvidence(backend, evidence.value, { trustedKeys: [KEY_A] }).valid, true);
  const whole = verifyEvidence(backend, evidence.value, {
    trustedKeys: [KEY_A],
    wholeRecorder: true,
  });
  assert.equal(whole.valid, false);
  assert.match(whole.error?.message ?? '', /entry seq 0: hash mismatch/);
});

test('Pipelock reader limits: a line over 1 MiB and a shard over 8 MiB are refused', () => {
  const long = `{"v":2,"summary":"${'x'.repeat(1024 * 1024)}"}`;
  const line = readEvidence(long, 'big.jsonl');
  assert.match(
    line.ok ? '' : line.failure.message,
    /big\.jsonl: line 1: longer than 1048576 bytes/,
  );
  const shard = readEvidenceDirectory([
    { name: 'evidence-proxy-0.jsonl', content: new Uint8Array(8 * 1024 * 1024 + 1) },
  ]);
  assert.match(shard.ok ? '' : shard.failure.message, /larger than 8388608 bytes/);
});
