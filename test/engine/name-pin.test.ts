import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNamePins } from '../../src/engine/name-pin.js';

test('one name pinned to two addresses is refused, naming both pins', () => {
  assert.equal(
    parseNamePins(['a.test:127.0.0.1', 'b.test:127.0.0.3', 'A.test.:127.0.0.2']),
    'a.test:127.0.0.1 and A.test.:127.0.0.2 pin a.test to two addresses; keep the one you mean',
  );
});

test('the same pin given twice, however it is spelt, is taken', () => {
  const pins = parseNamePins(['a.test:127.0.0.1', 'A.test:::ffff:127.0.0.1', 'b.test:[::1]']);
  assert.deepEqual(pins, [
    { host: 'a.test', address: { family: 4, value: 0x7f000001 } },
    { host: 'a.test', address: { family: 4, value: 0x7f000001 } },
    { host: 'b.test', address: { family: 6, value: 1n } },
  ]);
});

test("curl's host:port:address form is refused with the pin to write instead", () => {
  assert.equal(
    parseNamePins(['a.test:443:127.0.0.1']),
    `"a.test:443:127.0.0.1" is curl's host:port:address; a pin here holds for every port of the name: write a.test:127.0.0.1`,
  );
  assert.equal(
    parseNamePins(['a.test:8443:[::1]']),
    `"a.test:8443:[::1]" is curl's host:port:address; a pin here holds for every port of the name: write a.test:[::1]`,
  );
  assert.match(String(parseNamePins(['a.test:443:nowhere'])), /is not an IP address/);
});
