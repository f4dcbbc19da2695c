// IP addresses as numbers: parsing, RFC 5952 formatting, IPv4-mapped folding and CIDR maths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidrContains,
  formatCidr,
  formatIp,
  ipv6Address,
  makeCidr,
  maxPrefixLength,
  parseDottedIpv4,
  parseIpv6,
  sameIp,
  type IpAddress,
} from '../../src/policy/ip.js';

const v6 = (text: string): IpAddress => {
  const value = parseIpv6(text);
  if (value === undefined) assert.fail(`${text} should parse`);
  return ipv6Address(value);
};
const v4 = (text: string): IpAddress => {
  const value = parseDottedIpv4(text);
  if (value === undefined) assert.fail(`${text} should parse`);
  return { family: 4, value };
};

const RFC5952: ReadonlyArray<readonly [string, string]> = [
  ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
  ['2001:DB8::1', '2001:db8::1'],
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // tie: the first run is compressed
  ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
  ['2001:db8:1:1:1:1:0:0', '2001:db8:1:1:1:1::'],
  ['0:0:0:0:0:0:0:0', '::'],
  ['0:0:0:0:0:0:0:1', '::1'],
  ['1:0:0:0:0:0:0:0', '1::'],
  ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ['::0.0.0.1', '::1'],
  ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
  ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
];

for (const [input, expected] of RFC5952) {
  test(`RFC 5952: ${input} is written ${expected}`, () => {
    assert.equal(formatIp(v6(input)), expected);
  });
}

test('fe80:0:0:0:1:0:0:0 compresses the first of two equal runs', () => {
  assert.equal(formatIp(v6('fe80:0:0:0:1:0:0:0')), 'fe80::1:0:0:0');
});

const INVALID_V6 = [
  '',
  ':',
  ':::',
  '1::2::3',
  '1:2:3:4:5:6:7:8:9',
  '1:2:3:4:5:6:7',
  '12345::',
  'g::1',
  ':1::',
  '1::2:',
  '::1.2.3',
  '::1.2.3.256',
  '::01.2.3.4',
  '1.2.3.4::',
  '::ffff:1.2.3.4:1',
  '1:2:3:4:5:6:7:8::',
];
for (const text of INVALID_V6) {
  test(`parseIpv6 refuses ${JSON.stringify(text)}`, () => {
    assert.equal(parseIpv6(text), undefined);
  });
}

test('parseIpv6 reads embedded IPv4 in the last 32 bits', () => {
  assert.equal(parseIpv6('::ffff:1.2.3.4'), 0xffff01020304n);
  assert.equal(parseIpv6('64:ff9b::192.0.2.33'), (0x64n << 112n) | (0xff9bn << 96n) | 0xc0000221n);
  assert.equal(parseIpv6('1:2:3:4:5:6:1.2.3.4'), 0x0001000200030004000500060102_0304n);
});

test('an IPv4-mapped IPv6 address is the IPv4 address; other v6 stays v6', () => {
  assert.deepEqual(v6('::ffff:127.0.0.1'), { family: 4, value: 0x7f000001 });
  assert.deepEqual(v6('::FFFF:7f00:1'), { family: 4, value: 0x7f000001 });
  assert.deepEqual(v6('::ffff:0:0'), { family: 4, value: 0 });
  assert.equal(v6('::fffe:127.0.0.1').family, 6); // not the mapped prefix
  assert.equal(v6('::127.0.0.1').family, 6); // IPv4-compatible (deprecated) is not mapped
  assert.equal(v6('1::ffff:127.0.0.1').family, 6);
  assert.equal(formatIp(v6('::ffff:10.1.2.3')), '10.1.2.3');
});

test('parseDottedIpv4 accepts only canonical dotted quads', () => {
  assert.equal(parseDottedIpv4('127.0.0.1'), 0x7f000001);
  assert.equal(parseDottedIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseDottedIpv4('0.0.0.0'), 0);
  for (const bad of [
    '127.1',
    '127.0.0.01',
    '256.0.0.0',
    '1.2.3.4.5',
    '0x7f.0.0.1',
    '1.2.3.',
    '',
    '1.2.3.-4',
    '2130706433',
  ]) {
    assert.equal(parseDottedIpv4(bad), undefined, bad);
  }
});

test('formatIp writes IPv4 as a dotted quad (high bit included)', () => {
  assert.equal(formatIp({ family: 4, value: 0xc0a80101 }), '192.168.1.1');
  assert.equal(formatIp({ family: 4, value: 0xffffffff }), '255.255.255.255');
  assert.equal(formatIp({ family: 4, value: 0 }), '0.0.0.0');
});

test('sameIp compares family and value', () => {
  assert.equal(sameIp(v4('127.0.0.1'), v6('::ffff:127.0.0.1')), true);
  assert.equal(sameIp(v6('::1'), v6('0:0:0:0:0:0:0:1')), true);
  assert.equal(sameIp(v4('0.0.0.1'), v6('::1')), false);
  assert.equal(sameIp(v4('10.0.0.1'), v4('10.0.0.2')), false);
});

test('makeCidr clears host bits and says whether any were set', () => {
  assert.deepEqual(makeCidr(v4('10.0.0.0'), 8), {
    cidr: { family: 4, base: 0x0a000000n, prefixLength: 8 },
    hostBitsSet: false,
  });
  const set = makeCidr(v4('10.1.2.3'), 8);
  assert.equal(set.hostBitsSet, true);
  assert.equal(formatCidr(set.cidr), '10.0.0.0/8');
  assert.equal(makeCidr(v4('10.1.2.3'), 32).hostBitsSet, false);
  assert.equal(makeCidr(v4('10.1.2.3'), 0).hostBitsSet, true);
  assert.equal(formatCidr(makeCidr(v4('10.1.2.3'), 0).cidr), '0.0.0.0/0');
  assert.equal(formatCidr(makeCidr(v6('2001:db8::1'), 32).cidr), '2001:db8::/32');
  assert.equal(makeCidr(v6('2001:db8::1'), 128).hostBitsSet, false);
  assert.equal(formatCidr(makeCidr(v6('2001:db8:ffff::'), 33).cidr), '2001:db8:8000::/33');
  assert.equal(maxPrefixLength(4), 32);
  assert.equal(maxPrefixLength(6), 128);
});

interface ContainsRow {
  readonly cidr: readonly [IpAddress, number];
  readonly ip: IpAddress;
  readonly inside: boolean;
  readonly name: string;
}
const CONTAINS: readonly ContainsRow[] = [
  {
    name: '10.0.0.0/8 ∋ first address',
    cidr: [v4('10.0.0.0'), 8],
    ip: v4('10.0.0.0'),
    inside: true,
  },
  {
    name: '10.0.0.0/8 ∋ last address',
    cidr: [v4('10.0.0.0'), 8],
    ip: v4('10.255.255.255'),
    inside: true,
  },
  {
    name: '10.0.0.0/8 ∌ just below',
    cidr: [v4('10.0.0.0'), 8],
    ip: v4('9.255.255.255'),
    inside: false,
  },
  { name: '10.0.0.0/8 ∌ just above', cidr: [v4('10.0.0.0'), 8], ip: v4('11.0.0.0'), inside: false },
  {
    name: '192.168.4.0/22 ∋ 192.168.7.255',
    cidr: [v4('192.168.4.0'), 22],
    ip: v4('192.168.7.255'),
    inside: true,
  },
  {
    name: '192.168.4.0/22 ∌ 192.168.8.0',
    cidr: [v4('192.168.4.0'), 22],
    ip: v4('192.168.8.0'),
    inside: false,
  },
  {
    name: '192.168.4.0/22 ∌ 192.168.3.255',
    cidr: [v4('192.168.4.0'), 22],
    ip: v4('192.168.3.255'),
    inside: false,
  },
  {
    name: '0.0.0.0/0 ∋ 255.255.255.255',
    cidr: [v4('0.0.0.0'), 0],
    ip: v4('255.255.255.255'),
    inside: true,
  },
  {
    name: '0.0.0.0/0 ∌ ::1 (other family)',
    cidr: [v4('0.0.0.0'), 0],
    ip: v6('::1'),
    inside: false,
  },
  { name: '1.2.3.4/32 ∋ itself', cidr: [v4('1.2.3.4'), 32], ip: v4('1.2.3.4'), inside: true },
  { name: '1.2.3.4/32 ∌ 1.2.3.5', cidr: [v4('1.2.3.4'), 32], ip: v4('1.2.3.5'), inside: false },
  {
    name: '0.0.0.0/0 ∋ ::ffff:8.8.8.8 (mapped is v4)',
    cidr: [v4('0.0.0.0'), 0],
    ip: v6('::ffff:8.8.8.8'),
    inside: true,
  },
  { name: '::/0 ∋ ffff::', cidr: [v6('::'), 0], ip: v6('ffff::'), inside: true },
  {
    name: '::/0 ∌ 10.0.0.1 (other family)',
    cidr: [v6('::'), 0],
    ip: v4('10.0.0.1'),
    inside: false,
  },
  {
    name: '2001:db8::/32 ∋ last address',
    cidr: [v6('2001:db8::'), 32],
    ip: v6('2001:db8:ffff:ffff:ffff:ffff:ffff:ffff'),
    inside: true,
  },
  {
    name: '2001:db8::/32 ∌ 2001:db9::',
    cidr: [v6('2001:db8::'), 32],
    ip: v6('2001:db9::'),
    inside: false,
  },
  {
    name: '2001:db8::/32 ∌ 2001:db7:ffff:…',
    cidr: [v6('2001:db8::'), 32],
    ip: v6('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff'),
    inside: false,
  },
  { name: '::1/128 ∋ ::1', cidr: [v6('::1'), 128], ip: v6('::1'), inside: true },
  { name: '::1/128 ∌ ::2', cidr: [v6('::1'), 128], ip: v6('::2'), inside: false },
  { name: '::1/128 ∌ ::', cidr: [v6('::1'), 128], ip: v6('::'), inside: false },
];
for (const row of CONTAINS) {
  test(`cidrContains: ${row.name}`, () => {
    const { cidr, hostBitsSet } = makeCidr(...row.cidr);
    assert.equal(hostBitsSet, false);
    assert.equal(cidrContains(cidr, row.ip), row.inside);
  });
}
