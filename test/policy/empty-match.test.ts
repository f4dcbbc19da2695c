import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canMatchEmpty } from '../../src/policy/empty-match.js';

test('a pattern whose alternative is all optional or zero-width can match the empty string', () => {
  const empty = [
    ...['', 'a*', 'a{0}', 'a{0,3}?', '(?:)', 'a|', '(a|b?)', '(a*)+', '[a]*', '😀?'],
    // Zero-width parts match nothing wherever they hold, on texts of any length.
    ...['^', 'x?y*$', '\\b', '(?=Z)', '(?=.{20})', 'x?(?=%)', '(?<=a)', '(?<n>a?)\\k<n>'],
  ];
  for (const source of empty) assert.equal(canMatchEmpty(source), true, source);
});

test('a pattern that needs a character in every alternative cannot match the empty string', () => {
  const nonEmpty = [
    ...['a', 'a+', 'a{1,}', 'a{2}', 'a|b', '(a|b)c?', '(?=a)a', '(?<=a)b', '(?<n>a)\\k<n>'],
    // Escapes and classes are one character, whatever braces or brackets they hold.
    ...['\\(', '\\)?x', '[)]', '[^]', '\\d+', '\\p{L}', '\\u{41}{0}x', 'sk-[a-z]{20,}', '😀'],
  ];
  for (const source of nonEmpty) {
    assert.equal(canMatchEmpty(source), false, source);
    assert.equal(new RegExp(source, 'u').test(''), false, source);
  }
});
