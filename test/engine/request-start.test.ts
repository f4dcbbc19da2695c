import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestStart } from '../../src/engine/request-start.js';

test('a method node:http parses, then a space, begins a request; its prefixes ask for more', () => {
  for (const text of ['GET /x HTTP/1.1\r\n', 'POST ', 'M-SEARCH * HTTP/1.1', 'CONNECT a.test:443'])
    assert.equal(requestStart(Buffer.from(text)), 'request', text);
  for (const text of ['', 'G', 'GE', 'GET', 'M-SEA', 'UNSUBSCRIBE'])
    assert.equal(requestStart(Buffer.from(text)), 'incomplete', text);
});

test('anything else is not a request: another protocol, a lowercase or unknown method, no space', () => {
  for (const text of [
    'SSH-2.0-x\r\n',
    'get / HTTP/1.1',
    'FETCH / HTTP/1.1',
    'GET\t/',
    'GETX ',
    ' GET /',
  ])
    assert.equal(requestStart(Buffer.from(text)), 'other', text);
  assert.equal(requestStart(Buffer.from([0x16, 0x03, 0x01])), 'other');
});
