// A policy pattern's zero-length matches are no findings: validation refuses a pattern that can
// match empty, and the scanner would not act on one that got past it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detector } from '../../src/engine/dlp/detectors.js';
import { createSecretScanner } from '../../src/engine/dlp/secret-scan.js';
import { parseRequestTarget } from '../../src/policy/target.js';

const lookahead: Detector = { name: 'lookahead', pattern: /x?(?=%)/gu, fromPolicy: true };
const target = 'http://a.test/%41?q=%42';
const parsed = parseRequestTarget(target);
if (!parsed.ok) throw new Error(parsed.problem);
const to = parsed.target;

test('a zero-length match of a policy pattern is no finding and is not redacted', () => {
  const scanner = createSecretScanner([lookahead], []);
  assert.equal(scanner.scanUrl(target, to), undefined);
  assert.equal(scanner.scanContent([{ text: '100% sure', where: 'body' }], to, true), undefined);
  assert.equal(scanner.redactText('DLP 100% sure'), 'DLP 100% sure');
});

test('a policy pattern whose first match is empty still finds and redacts a later one', () => {
  const scanner = createSecretScanner([lookahead], []);
  const found = scanner.scanContent([{ text: '1% then x%', where: 'body' }], to, true);
  assert.equal(found?.detector, 'lookahead');
  assert.equal(scanner.redactText('1% then x%'), '1% then [REDACTED:lookahead]%');
});
