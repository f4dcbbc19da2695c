import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, parseJson, rawText } from '../../src/receipts/json.js';

test('duplicate keys are rejected at any depth', () => {
  const result = parseJson('{"a":{"b":1,"b":2}}');
  assert.equal(result.ok, false);
  assert.match(result.ok ? '' : result.error, /duplicate key "b"/);
});

test('a key that differs only by escaping is still a duplicate', () => {
  assert.equal(parseJson('{"a":1,"\\u0061":2}').ok, false);
});

test('trailing tokens after the value are rejected, trailing whitespace is not', () => {
  assert.equal(parseJson('{} {}').ok, false);
  assert.equal(parseJson('{"a":1},').ok, false);
  assert.equal(parseJson(' {"a":1} \n').ok, true);
});

test(`nesting up to ${MAX_JSON_DEPTH} levels parses, one more fails`, () => {
  assert.equal(parseJson('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)).ok, true);
  const deep = parseJson('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1));
  assert.match(deep.ok ? '' : deep.error, /nesting deeper than 128/);
});

test('integers beyond 2^53 keep their exact text', () => {
  const result = parseJson('{"seq":18446744073709551615}');
  assert.ok(result.ok);
  const seq = result.doc.root.kind === 'object' ? result.doc.root.members.get('seq') : undefined;
  assert.equal(seq?.kind === 'number' ? BigInt(seq.text) : undefined, 2n ** 64n - 1n);
});

test('raw text of a value is its exact source, whitespace and escapes included', () => {
  const source = '{"ext" : { "b" : [1.0, -0, 1E+2], "a":"\\u0041\\/" } }';
  const result = parseJson(source);
  assert.ok(result.ok && result.doc.root.kind === 'object');
  const ext = result.doc.root.members.get('ext');
  assert.ok(ext);
  assert.equal(rawText(result.doc, ext), '{ "b" : [1.0, -0, 1E+2], "a":"\\u0041\\/" }');
});

test('lone surrogate escapes decode to U+FFFD like Go; pairs decode to one code point', () => {
  const result = parseJson('["\\ud800x","\\udc00","\\ud83d\\ude00","\\ud83d\\u0041"]');
  assert.ok(result.ok && result.doc.root.kind === 'array');
  const values = result.doc.root.items.map((n) => (n.kind === 'string' ? n.value : ''));
  assert.deepEqual(values, ['\ufffdx', '\ufffd', '😀', '\ufffdA']);
});

test('raw control characters in strings, bad escapes and malformed numbers are rejected', () => {
  for (const bad of [
    '"a\u0001"',
    '"\\x41"',
    '01',
    '1.',
    '-',
    '.5',
    '1e',
    '+1',
    'tru',
    'NaN',
    '{"a" 1}',
    '[1,]',
    '{,}',
  ]) {
    assert.equal(parseJson(bad).ok, false, bad);
  }
});

test('raw U+2028 and U+0085 inside strings are ordinary characters', () => {
  const result = parseJson('"a\u2028b\u0085c"');
  assert.ok(result.ok);
  assert.equal(result.doc.root.kind === 'string' ? result.doc.root.value : '', 'a\u2028b\u0085c');
});

test('raw lone surrogates in strings decode to U+FFFD; a raw pair is kept', () => {
  const result = parseJson('["a\ud800b","\udc00\ud800","x\ud83d\ude00y"]');
  assert.ok(result.ok && result.doc.root.kind === 'array');
  const values = result.doc.root.items.map((n) => (n.kind === 'string' ? n.value : ''));
  assert.deepEqual(values, ['a\ufffdb', '\ufffd\ufffd', 'x😀y']);
  assert.deepEqual(
    result.doc.root.items.map((n) => [n.start, n.end]),
    [
      [1, 6],
      [7, 11],
      [12, 18],
    ],
  );
});

test('string errors name the offset where they occur', () => {
  const errors: Array<[string, string]> = [
    ['"ab', 'offset 3: unterminated string'],
    ['"\\ud800\ud800\\"', 'offset 10: unterminated string'],
    ['{"k":"a\u0001"}', 'offset 7: control character in string'],
    ['"a\\q"', 'offset 3: invalid escape in string'],
    ['"a\\u12"', 'offset 4: invalid \\u escape'],
  ];
  for (const [source, error] of errors) {
    const result = parseJson(source);
    assert.equal(result.ok ? '' : result.error, `invalid JSON at ${error}`, source);
  }
});
