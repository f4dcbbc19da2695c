import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkResolvedAddresses,
  parseResolvedAddress,
  specialAddressKind,
  type AddressedRequest,
} from '../../src/engine/ssrf.js';
import { parseRequestTarget } from '../../src/policy/target.js';
import { createResolver } from '../../src/engine/resolver.js';
import { parseNamePin } from '../../src/engine/name-pin.js';
import { formatIp, type IpAddress } from '../../src/policy/ip.js';
import { namePins, policyFrom } from './helpers.js';

function ip(text: string): IpAddress {
  const parsed = parseResolvedAddress(text);
  if (parsed === undefined) throw new Error(`not an address: ${text}`);
  return parsed;
}

/** A request to URL (a host name: https://NAME/). */
function get(url: string, method = 'GET'): AddressedRequest {
  const parsed = parseRequestTarget(
    url.includes('/') || url.includes(':') ? url : `https://${url}/`,
  );
  if (!parsed.ok) throw new Error(parsed.problem);
  return { methods: [method], target: parsed.target };
}

const OPEN = policyFrom(
  'version: "1.0"\negress:\n  - destination: "api.example.test"\ndefault_deny: true\n',
);

test('special IPv4 ranges are classified', () => {
  const cases: Array<[string, string]> = [
    ['0.0.0.0', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['100.64.0.1', 'shared (carrier-grade NAT)'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
  ];
  for (const [text, kind] of cases) assert.equal(specialAddressKind(ip(text)), kind, text);
});

test('public IPv4 addresses are not special', () => {
  for (const text of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '11.0.0.1', '192.169.0.1'])
    assert.equal(specialAddressKind(ip(text)), undefined, text);
});

test('special IPv6 ranges are classified', () => {
  const cases: Array<[string, string]> = [
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fc00::1', 'unique local (private)'],
    ['fd12:3456::1', 'unique local (private)'],
    ['ff02::1', 'multicast'],
    ['64:ff9b::7f00:1', 'NAT64 (embeds an IPv4 address)'],
    ['2002:7f00:1::1', '6to4 (embeds an IPv4 address)'],
    ['2001:db8::1', 'documentation'],
    ['::127.0.0.1', 'IPv4-compatible (deprecated, embeds an IPv4 address)'],
    ['::ffff:0:a9fe:a9fe', 'IPv4-translated (embeds an IPv4 address)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo (embeds an IPv4 address)'],
    ['fec0::1', 'site-local (deprecated, private)'],
  ];
  for (const [text, kind] of cases) assert.equal(specialAddressKind(ip(text)), kind, text);
  assert.equal(specialAddressKind(ip('2606:4700::1111')), undefined);
});

test('IPv4-mapped IPv6 answers are judged as the IPv4 they carry', () => {
  const mapped = ip('::ffff:127.0.0.1');
  assert.equal(mapped.family, 4);
  assert.equal(specialAddressKind(mapped), 'loopback');
  assert.equal(specialAddressKind(ip('::ffff:a9fe:a9fe')), 'link-local (cloud metadata)');
  assert.equal(specialAddressKind(ip('::ffff:8.8.8.8')), undefined);
});

test('a zone index on a resolved IPv6 answer is ignored for classification', () => {
  assert.equal(specialAddressKind(ip('fe80::1%eth0')), 'link-local');
});

test('a loopback answer is blocked when no rule names it', () => {
  const check = checkResolvedAddresses(OPEN, get('api.example.test'), [ip('127.0.0.1')]);
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.reason, /loopback address 127\.0\.0\.1/);
});

test('each internal answer kind is blocked without a rule', () => {
  for (const text of [
    '10.0.0.1',
    '169.254.169.254',
    '::1',
    '::ffff:127.0.0.1',
    '0.0.0.0',
    '224.0.0.5',
  ]) {
    const check = checkResolvedAddresses(OPEN, get('api.example.test'), [ip(text)]);
    assert.equal(check.ok, false, text);
  }
});

test('an internal answer passes when a rule names that IP', () => {
  const policy = policyFrom(
    'version: "1.0"\negress:\n  - destination: "api.example.test"\n  - destination: "127.0.0.1"\ndefault_deny: true\n',
  );
  const check = checkResolvedAddresses(policy, get('api.example.test'), [ip('127.0.0.1')]);
  assert.deepEqual(check, { ok: true, address: ip('127.0.0.1'), scan: false });
  // Naming 127.0.0.1 does not open the rest of the loopback range.
  assert.equal(
    checkResolvedAddresses(policy, get('api.example.test'), [ip('127.0.0.2')]).ok,
    false,
  );
});

test('a rule naming the address that allows the request there may ask for its content scanned', () => {
  const policy = policyFrom(
    'version: "1.0"\negress:\n  - destination: "api.example.test"\n  - destination: "127.0.0.0/8"\n    paths: ["/scanned/"]\n    scan: true\n  - destination: "127.0.0.1"\n    paths: ["/open/"]\n',
  );
  const scanAt = (path: string) => {
    const check = checkResolvedAddresses(policy, get(`https://api.example.test${path}`), [
      ip('127.0.0.1'),
    ]);
    return check.ok && check.scan;
  };
  assert.equal(scanAt('/scanned/x'), true);
  assert.equal(scanAt('/open/x'), false);
  // A public answer is judged by the name's rules alone.
  const publicCheck = checkResolvedAddresses(policy, get('api.example.test'), [
    ip('93.184.216.34'),
  ]);
  assert.equal(publicCheck.ok && publicCheck.scan, false);
});

test('an internal answer passes when a rule names a CIDR containing it', () => {
  const policy = policyFrom(
    'version: "1.0"\negress:\n  - destination: "10.1.0.0/16"\ndefault_deny: true\n',
  );
  assert.equal(checkResolvedAddresses(policy, get('db.test'), [ip('10.1.2.3')]).ok, true);
  assert.equal(checkResolvedAddresses(policy, get('db.test'), [ip('10.2.0.1')]).ok, false);
});

test('a CIDR reaching beyond an internal range does not name the addresses inside it', () => {
  const policy = policyFrom(`version: "1.0"
egress:
  - destination: "0.0.0.0/0"
  - destination: "::/0"
  - destination: "10.0.0.0/7"
  - destination: "172.16.0.0/12"
`);
  for (const [text, range] of [
    ['169.254.169.254', '169.254.0.0/16'],
    ['127.0.0.1', '127.0.0.0/8'],
    ['10.1.2.3', '10.0.0.0/8'],
    ['::1', '::1/128'],
    ['fd00::1', 'fc00::/7'],
  ] as const) {
    // An IP literal is judged as a name resolved to it is.
    for (const request of [
      get('api.example.test'),
      get(`http://${ip(text).family === 6 ? `[${text}]` : text}/`),
    ]) {
      const check = checkResolvedAddresses(policy, request, [ip(text)]);
      assert.equal(check.ok, false, text);
      assert.ok(
        !check.ok && check.reason.includes(`(the IP, or a CIDR within ${range})`),
        check.ok ? text : check.reason,
      );
    }
  }
  // A CIDR as wide as the range names it.
  assert.equal(checkResolvedAddresses(policy, get('db.test'), [ip('172.20.0.1')]).ok, true);
  // Public addresses pass on the wide rules.
  assert.equal(checkResolvedAddresses(policy, get('db.test'), [ip('93.184.216.34')]).ok, true);
});

test('an internal answer passes only for what the rule naming it allows: its port, path and method', () => {
  const policy = policyFrom(`version: "1.0"
egress:
  - destination: "127.0.0.1:8080"
    methods: ["GET"]
    paths: ["/api/"]
default_deny: false
`);
  const at = (url: string, method = 'GET') =>
    checkResolvedAddresses(policy, get(url, method), [ip('127.0.0.1')]);
  assert.equal(at('http://stand-in.test:8080/api/items').ok, true);
  for (const [url, method] of [
    ['http://stand-in.test:8081/api/items', 'GET'],
    ['http://stand-in.test:8080/api/items', 'DELETE'],
    ['http://stand-in.test:8080/admin', 'GET'],
    ['stand-in.test:8081', 'CONNECT'],
  ] as const) {
    const check = at(url, method);
    assert.equal(check.ok, false, `${method} ${url}`);
    assert.match(
      check.ok ? '' : check.reason,
      /^SSRF blocked: stand-in\.test resolves to loopback address 127\.0\.0\.1; only a rule naming that address \(the IP, or a CIDR within 127\.0\.0\.0\/8\) that allows this request lets it through$/,
    );
  }
  assert.equal(at('stand-in.test:8080', 'CONNECT').ok, true);
});

test('an IPv6 rule names ::1 and an IPv4-mapped rule names the IPv4 address', () => {
  const policy = policyFrom(
    'version: "1.0"\negress:\n  - destination: "[::1]"\n  - destination: "[::ffff:169.254.169.254]"\ndefault_deny: true\n',
  );
  assert.equal(checkResolvedAddresses(policy, get('a.test'), [ip('::1')]).ok, true);
  assert.equal(checkResolvedAddresses(policy, get('a.test'), [ip('169.254.169.254')]).ok, true);
});

test('mixed public and private answers are blocked (rebinding shape)', () => {
  const check = checkResolvedAddresses(OPEN, get('api.example.test'), [
    ip('93.184.216.34'),
    ip('10.0.0.1'),
  ]);
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.reason, /private address 10\.0\.0\.1/);
});

test('a public answer is allowed and the first answer is the one to connect to', () => {
  const check = checkResolvedAddresses(OPEN, get('api.example.test'), [
    ip('93.184.216.34'),
    ip('2606:2800::1'),
  ]);
  assert.equal(check.ok, true);
  assert.equal(check.ok ? formatIp(check.address) : '', '93.184.216.34');
});

test('no answers at all is a block', () => {
  const check = checkResolvedAddresses(OPEN, get('api.example.test'), []);
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.reason, /resolved to no address/);
});

test('the resolver answers pins without a lookup and IP literals as themselves', async () => {
  const asked: string[] = [];
  const resolver = createResolver(namePins({ 'API.Example.test.': '::ffff:127.0.0.1' }), (name) => {
    asked.push(name);
    return Promise.reject(new Error('no lookups'));
  });
  assert.deepEqual(await resolver.resolve({ kind: 'name', name: 'api.example.test' }), [
    ip('127.0.0.1'),
  ]);
  assert.deepEqual(await resolver.resolve({ kind: 'ip', ip: ip('10.0.0.1') }), [ip('10.0.0.1')]);
  assert.deepEqual(asked, []);
});

test('the resolver reports a failed lookup naming the host', async () => {
  const resolver = createResolver([], () =>
    Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' })),
  );
  await assert.rejects(
    resolver.resolve({ kind: 'name', name: 'missing.test' }),
    /missing\.test: ENOTFOUND/,
  );
});

test('the resolver times out a lookup that never answers', async () => {
  const resolver = createResolver([], () => new Promise(() => undefined), 50);
  await assert.rejects(
    resolver.resolve({ kind: 'name', name: 'slow.test' }),
    /timed out after 50 ms/,
  );
});

test('--resolve pins an address in dotted decimal or IPv6, and nothing else', () => {
  const pinned = (address: string): string | undefined => {
    const pin = parseNamePin(`a.test:${address}`);
    return typeof pin === 'string' ? undefined : formatIp(pin.address);
  };
  assert.equal(pinned('127.0.0.1'), '127.0.0.1');
  assert.equal(pinned('[::1]'), '::1');
  assert.equal(pinned('::ffff:127.0.0.1'), '127.0.0.1');
  for (const address of [
    '127.1',
    '2130706433',
    '010.0.0.1',
    '0x7f.0.0.1',
    '127.0.0.1.',
    'fe80::1%eth0',
    'not-an-ip',
  ])
    assert.equal(pinned(address), undefined, address);
});
