import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leafNames } from '../../src/engine/tls/leaf-names.js';
import type { Host } from '../../src/policy/index.js';

const NAME: Host = { kind: 'name', name: 'api.example.test' };
const IPV4: Host = { kind: 'ip', ip: { family: 4, value: 0x7f000001 } };
const IPV6: Host = { kind: 'ip', ip: { family: 6, value: 1n } };

test('a leaf names the judged host alone when the client spelled it canonically or in a form clients fold', () => {
  assert.deepEqual(leafNames(NAME, 'api.example.test:443'), [{ dnsName: 'api.example.test' }]);
  assert.deepEqual(leafNames(NAME, 'API.Example.TEST:443'), [{ dnsName: 'api.example.test' }]);
  assert.deepEqual(leafNames(IPV4, '127.0.0.1:443'), [{ ipAddress: '127.0.0.1' }]);
  assert.deepEqual(leafNames(IPV4, '0x7f.1:443'), [{ ipAddress: '127.0.0.1' }]);
  assert.deepEqual(leafNames(IPV6, '[0:0::1]:443'), [{ ipAddress: '::1' }]);
});

test('a trailing dot adds the dotted name; an IPv4-mapped IPv6 literal adds that address', () => {
  assert.deepEqual(leafNames(NAME, 'api.example.test.:8443'), [
    { dnsName: 'api.example.test' },
    { dnsName: 'api.example.test.' },
  ]);
  assert.deepEqual(leafNames(IPV4, '[::ffff:127.0.0.1]:443'), [
    { ipAddress: '127.0.0.1' },
    { ipAddress: '::ffff:7f00:1' },
  ]);
});
