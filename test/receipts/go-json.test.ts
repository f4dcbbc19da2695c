import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactRaw, goString } from '../../src/receipts/go-json.js';

test('HTML characters and line separators are escaped as Go does', () => {
  assert.equal(
    goString('<a href="x">&\u2028\u2029</a>'),
    '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u2028\\u2029\\u003c/a\\u003e"',
  );
});

test('controls use short escapes where Go has them and lowercase \\u00xx otherwise; DEL and / stay raw', () => {
  assert.equal(goString('\b\f\n\r\t\u0000\u001f\u007f/'), '"\\b\\f\\n\\r\\t\\u0000\\u001f\u007f/"');
});

test('astral characters stay raw and lone surrogates become U+FFFD', () => {
  assert.equal(goString('😀\ud800x\udc00'), '"😀\ufffdx\ufffd"');
});

test('compacting raw JSON drops whitespace outside strings only and keeps spelling', () => {
  const raw = ' { "a b" : [ 1.0 , -0 , 1E+2 ] ,\n\t"c":"x y\\"<\u2028" , "d" : "\\u0041\\/" } ';
  assert.equal(
    compactRaw(raw),
    '{"a b":[1.0,-0,1E+2],"c":"x y\\"\\u003c\\u2028","d":"\\u0041\\/"}',
  );
});

test('an escaped backslash before a quote does not confuse string tracking', () => {
  assert.equal(compactRaw('[ "\\\\" , "<" ]'), '["\\\\","\\u003c"]');
});
