// EvidenceStream: every evidence shape, cut into chunks of any size, reads as the whole text does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EvidenceStream } from '../../src/receipts/evidence-stream.js';
import type { EvidenceReport } from '../../src/receipts/evidence.js';
import { EvidenceVerifier, readEvidence, verifyEvidence } from '../../src/receipts/evidence.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { KEY_A, vectorText } from './vectors.js';

const backend = createNodeBackend();

function streamed(text: string | Uint8Array, chunk: number, wholeRecorder = false) {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  const verifier = new EvidenceVerifier(backend, { trustedKeys: [KEY_A], wholeRecorder });
  const stream = new EvidenceStream(verifier, 'input');
  let accepted = 0;
  for (let at = 0; at < bytes.length; at += chunk) {
    if (!stream.write(bytes.subarray(at, at + chunk))) break;
    accepted = at + chunk;
  }
  stream.end();
  return { report: verifier.finish(), accepted };
}

function whole(text: string): EvidenceReport {
  const evidence = readEvidence(text);
  assert.ok(evidence.ok, evidence.ok ? '' : evidence.failure.message);
  return verifyEvidence(backend, evidence.value, { trustedKeys: [KEY_A] });
}

const chainLines = vectorText('valid-chain.jsonl').split('\n').filter(Boolean);
const bareReceipts = chainLines.map((line) => {
  const start = line.indexOf('"detail":') + '"detail":'.length;
  return line.slice(start, line.lastIndexOf(',"prev_hash":'));
});

const SHAPES: Record<string, string> = {
  'recorder JSONL': vectorText('valid-chain.jsonl'),
  'JSONL with raw U+2028 / U+0085 in strings': vectorText('g1-ext-chain.jsonl'),
  'CRLF JSONL after blank lines': `\r\n\n${chainLines.join('\r\n')}\r\n`,
  'bare-receipt JSONL without a final newline': bareReceipts.join('\n'),
  'a pretty-printed receipts array': `[\n  ${bareReceipts.join(',\n  ')}\n]\n`,
  'a compact receipts array': `[${bareReceipts.join(',')}]`,
  'one pretty-printed receipt': vectorText('valid-single.json'),
  'one compact receipt from the middle of a chain, judged alone': `${bareReceipts[2] ?? ''}\n`,
  'the same receipt without a final newline': bareReceipts[2] ?? '',
  'JSONL ending in white space without a newline': `${vectorText('valid-chain.jsonl')}  `,
  'JSONL ending in a lone CR': `${vectorText('valid-chain.jsonl')}\r`,
};

for (const [shape, text] of Object.entries(SHAPES)) {
  test(`${shape}: streamed in chunks of any size, the report equals the whole-text one`, () => {
    const expected = whole(text);
    assert.equal(expected.valid, true, expected.error?.message);
    for (const chunk of [1, 7, 4096, 1 << 20]) {
      const { report } = streamed(text, chunk);
      assert.deepEqual(report, expected, `chunks of ${chunk}`);
    }
  });
}

test('streamed whole-recorder verification matches the whole-text one', () => {
  const text = vectorText('valid-chain.jsonl');
  const evidence = readEvidence(text);
  assert.ok(evidence.ok);
  const expected = verifyEvidence(backend, evidence.value, {
    trustedKeys: [KEY_A],
    wholeRecorder: true,
  });
  assert.equal(expected.valid, true);
  assert.deepEqual(streamed(text, 13, true).report, expected);
});

const MALFORMED: Array<[string, string, RegExp]> = [
  ['data after the array', `[${bareReceipts[0] ?? ''}] x`, /input: data after the receipts array/],
  ['an unclosed array', `[${bareReceipts[0] ?? ''},`, /input: the receipts array is not closed/],
  ['a non-object element', `[${bareReceipts[0] ?? ''}, 3]`, /input: receipt 1: expected a receipt/],
  [
    'two elements without a comma',
    `[${bareReceipts[0] ?? ''} {}]`,
    /receipt 1: expected a receipt/,
  ],
  ['a broken first line', `{"v":1,\n${chainLines[1] ?? ''}\n`, /input: line 1: invalid JSON/],
  ['a broken later line', `${chainLines[0] ?? ''}\n\n{"v":\n`, /input: line 3: invalid JSON/],
  [
    'a line holding only a byte order mark',
    `${chainLines[0] ?? ''}\n\ufeff\n`,
    /input: line 2: invalid JSON/,
  ],
  [
    'entries then bare receipts',
    `${chainLines[0] ?? ''}\n${bareReceipts[1] ?? ''}\n`,
    /line 2: bare receipt mixed/,
  ],
];

for (const [what, text, error] of MALFORMED) {
  test(`malformed evidence is reported with its place: ${what}`, () => {
    for (const chunk of [1, 64, 1 << 20]) {
      const { report } = streamed(text, chunk);
      assert.equal(report.valid, false);
      assert.equal(report.error?.class, 'malformed', report.error?.message);
      assert.match(report.error?.message ?? '', error, `chunks of ${chunk}`);
    }
  });
}

test('a receipt that does not decode breaks the chain at the chain_seq it claims', () => {
  const lines = [...chainLines];
  lines[2] = (lines[2] ?? '').replace('"action_record":{', '"action_record":{"x_extra":1,');
  assert.notEqual(lines[2], chainLines[2]);
  const text = `${lines.join('\n')}\n`;
  for (const report of [streamed(text, 64).report, streamed(text, 1 << 20).report]) {
    assert.equal(report.valid, false);
    assert.equal(report.error?.class, 'malformed');
    assert.match(
      report.error?.message ?? '',
      /line 3: unmarshal receipt: .*unknown field "x_extra"/,
    );
    assert.equal(report.broken_at_seq, 2n);
  }
  const read = readEvidence(text);
  assert.equal(read.ok ? undefined : read.failure.seq, 2n);
});

test('invalid UTF-8 is reported with its line number', () => {
  const bytes = Buffer.concat([
    Buffer.from(`${chainLines[0] ?? ''}\n`),
    Buffer.from([0x7b, 0xff, 0x7d, 0x0a]),
  ]);
  assert.match(streamed(bytes, 5).report.error?.message ?? '', /input: line 2: not valid UTF-8/);
});

test('a line longer than 1 MiB is refused before it is buffered whole', () => {
  const endless = Buffer.alloc(4 * 1024 * 1024, 0x78);
  const { report, accepted } = streamed(Buffer.concat([Buffer.from('{'), endless]), 64 * 1024);
  assert.match(
    report.error?.message ?? '',
    /input: line 1: .*more than 1048576 bytes|longer than 1048576 bytes/,
  );
  assert.ok(accepted < 2 * 1024 * 1024, `read ${accepted} bytes before refusing`);
});

test('reading stops as soon as the chain breaks', () => {
  const lines = [...chainLines];
  lines[1] = lines[1]?.replace('"verdict":"allow"', '"verdict":"block"') ?? '';
  const padding = `${chainLines[4] ?? ''}\n`.repeat(2000);
  const { report, accepted } = streamed(`${lines.join('\n')}\n${padding}`, 4096);
  assert.equal(report.broken_at_seq, 1n);
  assert.equal(report.receipt_count, 2);
  assert.ok(accepted < 8192, `read ${accepted} bytes after the break`);
});
