// Path prefixes: canonical rule paths, request path readings, and segment-aware matching.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathReadings, pathWithin, rulePathProblem } from '../../src/policy/path.js';

const WITHIN: ReadonlyArray<readonly [path: string, prefix: string, within: boolean]> = [
  ['/repos/acme', '/repos/acme', true],
  ['/repos/acme/', '/repos/acme', true],
  ['/repos/acme/x/y', '/repos/acme', true],
  ['/repos/acme-evil', '/repos/acme', false],
  ['/repos/acmeX', '/repos/acme', false],
  ['/repos', '/repos/acme', false],
  ['/repos/acme', '/repos/acme/', false],
  ['/repos/acme/', '/repos/acme/', true],
  ['/repos/acme/x', '/repos/acme/', true],
  ['/anything', '/', true],
  ['/', '/', true],
  ['/Repos/acme', '/repos/acme', false],
  ['/repos/acme%2fx', '/repos/acme', false],
];
for (const [path, prefix, within] of WITHIN) {
  test(`pathWithin(${path}, ${prefix}) is ${within}`, () => {
    assert.equal(pathWithin(path, prefix), within);
  });
}

const RULE_PATHS: ReadonlyArray<readonly [path: string, problem: string | undefined]> = [
  ['/', undefined],
  ['/repos/acme', undefined],
  ['/repos/acme/', undefined],
  ['/caf%C3%A9/', undefined],
  ['repos', 'must start with "/"'],
  ['', 'must start with "/"'],
  ['/a?b', 'query or fragment'],
  ['/a#b', 'query or fragment'],
  ['/a/%2e%2e/b', 'encoded dots'],
  ['/a%2Fb', 'encoded dots'],
  ['/a%5cb', 'encoded dots'],
  ['/a%25b', 'percent signs'],
  ['/%zz', 'starts no percent-escape'],
  ['/a/100%', 'starts no percent-escape'],
  ['/a%4', 'starts no percent-escape'],
  ['/a\\b', 'backslashes'],
  ['/a/../b', 'did you mean "/b"?'],
  ['/a/./b', 'did you mean "/a/b"?'],
  ['/a//b', 'did you mean "/a/b"?'],
  ['//a', 'did you mean "/a"?'],
  ['/a/..', 'did you mean "/"?'],
  ['/a/.', 'did you mean "/a/"?'],
  ['/café', 'did you mean "/caf%C3%A9"?'],
  ['/a b', 'did you mean "/a%20b"?'],
  // Read with parameters cut, every request under these is outside them: dead rules.
  ['/a;b/', 'must not contain ";"'],
  ['/x;y', 'must not contain ";"'],
  ['/a%3Bb/', 'must not contain ";"'],
];
for (const [path, problem] of RULE_PATHS) {
  test(`rulePathProblem(${JSON.stringify(path)}) ${problem === undefined ? 'accepts' : `says ${problem}`}`, () => {
    const actual = rulePathProblem(path);
    if (problem === undefined) assert.equal(actual, undefined);
    else assert.ok(actual?.includes(problem), `${String(actual)} should contain ${problem}`);
  });
}

// Inputs are WHATWG-parsed pathnames (dot segments already resolved, "\" already "/").
const READINGS: ReadonlyArray<readonly [pathname: string, readings: readonly string[]]> = [
  ['/a/b', ['/a/b']],
  ['/', ['/']],
  ['/a/', ['/a/']],
  ['/a//b', ['/a//b', '/a/b']],
  ['//b', ['//b', '/b']],
  ['/a/..%2fb', ['/a/..%2Fb', '/b']],
  ['/a/%2E%2E%2Fb', ['/a/%2E%2E%2Fb', '/b']],
  ['/a/..%5cb', ['/a/..%5Cb', '/b']],
  ['/b/..%2f../a/x', ['/b/..%2F../a/x', '/a/x']],
  ['/a%2fx', ['/a%2Fx', '/a/x']],
  ['/a/x/..%2f..%2f..%2f..%2fb', ['/a/x/..%2F..%2F..%2F..%2Fb', '/b']],
  ['/a/%2e%2e', ['/a/%2E%2E', '/']],
  ['/a/x%2f', ['/a/x%2F', '/a/x/']],
  ['/a/%41', ['/a/%41']],
  ['/caf%c3%a9/', ['/caf%C3%A9/']],
  // Path parameters: Tomcat, Jetty and older Spring cut `;…` from each segment before routing.
  ['/repos/acme/..;/evil', ['/repos/acme/..;/evil', '/repos/evil']],
  [
    '/repos/acme/%2e%2e;x/evil',
    ['/repos/acme/%2E%2E;x/evil', '/repos/acme/..;x/evil', '/repos/evil'],
  ],
  ['/repos/acme/..%3b/evil', ['/repos/acme/..%3B/evil', '/repos/acme/..;/evil', '/repos/evil']],
  ['/repos/acme/x;v=1/y', ['/repos/acme/x;v=1/y', '/repos/acme/x/y']],
  // Tomcat cuts them before decoding: an encoded slash inside one goes with it.
  [
    '/repos/acme/..;%2facme/evil',
    ['/repos/acme/..;%2Facme/evil', '/repos/acme/..;/acme/evil', '/repos/acme/evil', '/repos/evil'],
  ],
];
for (const [pathname, readings] of READINGS) {
  test(`pathReadings(${pathname}) → ${readings.join(' and ')}`, () => {
    assert.deepEqual(pathReadings(pathname), { ok: true, readings });
  });
}

for (const pathname of [
  '/a/%252e%252e/b',
  '/a/%252E',
  '/a/..%252fb',
  '/a/..%252F',
  '/a/%255c',
  '/a/%255C..',
  '/a/%25%32%65%25%32%65/b',
  '/a/%25%32%46',
  '/a/..%253b/b',
]) {
  test(`pathReadings refuses the double-encoded ${pathname}`, () => {
    const result = pathReadings(pathname);
    assert.equal(result.ok, false);
    if (!result.ok)
      assert.match(result.problem, /double-encoded dot, slash, backslash or semicolon/);
  });
}

for (const pathname of [
  '/a/%c0%ae%c0%ae/b',
  '/a/%C0%AF',
  '/a/..%c1%9cb',
  '/a/%e0%80%ae%e0%80%ae/b',
  '/a/%F0%80%80%AF',
  '/a/%u002e%u002e/b',
  '/a/..%U002F',
  '/a/%25c0%25ae%25c0%25ae/b',
  '/a/%25u002e',
]) {
  test(`pathReadings refuses the overlong or %u escape in ${pathname}`, () => {
    const result = pathReadings(pathname);
    assert.equal(result.ok, false);
    if (!result.ok) assert.match(result.problem, /overlong UTF-8 escape .* or a %uXXXX escape/);
  });
}

test('well-formed UTF-8 escapes beside those lead bytes are read as they are', () => {
  for (const pathname of ['/caf%C3%A9', '/%E0%A4%85', '/%F0%9F%98%80', '/%E2%82%AC', '/u0041'])
    assert.deepEqual(pathReadings(pathname), { ok: true, readings: [pathname] });
});

test('an encoded percent sign that does not form a separator is not refused', () => {
  assert.deepEqual(pathReadings('/a/100%25'), { ok: true, readings: ['/a/100%25'] });
  assert.deepEqual(pathReadings('/a/%2541'), { ok: true, readings: ['/a/%2541'] });
});
