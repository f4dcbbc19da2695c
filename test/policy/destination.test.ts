// Destination forms, host canonicalisation and request targets at unit level.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostMatches, parseDestination, type Destination } from '../../src/policy/destination.js';
import { formatHost, parseIpv6Literal, parseNameOrIpv4 } from '../../src/policy/host.js';
import { parseRequestTarget } from '../../src/policy/target.js';

function parsed(text: string): Destination {
  const result = parseDestination(text);
  if (!result.ok) assert.fail(`${text}: ${result.problem}`);
  return result.destination;
}

interface FormRow {
  readonly input: string;
  readonly canonical: string;
  readonly kind: 'exact' | 'wildcard' | 'cidr';
  readonly port?: number;
  readonly url?: { scheme: 'http' | 'https'; pathPrefix: string };
}

const FORMS: readonly FormRow[] = [
  { input: 'api.github.com', canonical: 'api.github.com', kind: 'exact' },
  { input: 'API.GitHub.COM', canonical: 'api.github.com', kind: 'exact' },
  { input: 'api.github.com.', canonical: 'api.github.com', kind: 'exact' },
  { input: 'bücher.example', canonical: 'xn--bcher-kva.example', kind: 'exact' },
  { input: 'BÜCHER.example.', canonical: 'xn--bcher-kva.example', kind: 'exact' },
  { input: 'xn--bcher-kva.example', canonical: 'xn--bcher-kva.example', kind: 'exact' },
  { input: 'localhost', canonical: 'localhost', kind: 'exact' },
  { input: 'api.github.com:8443', canonical: 'api.github.com:8443', kind: 'exact', port: 8443 },
  { input: '*.githubusercontent.com', canonical: '*.githubusercontent.com', kind: 'wildcard' },
  { input: '*.GitHubUserContent.com.', canonical: '*.githubusercontent.com', kind: 'wildcard' },
  { input: '*.example.com:8443', canonical: '*.example.com:8443', kind: 'wildcard', port: 8443 },
  { input: '*.bücher.example', canonical: '*.xn--bcher-kva.example', kind: 'wildcard' },
  { input: '127.0.0.1', canonical: '127.0.0.1', kind: 'exact' },
  { input: '::1', canonical: '[::1]', kind: 'exact' },
  { input: '[::1]', canonical: '[::1]', kind: 'exact' },
  { input: '[::1]:8080', canonical: '[::1]:8080', kind: 'exact', port: 8080 },
  { input: '2001:DB8:0:0:0:0:0:1', canonical: '[2001:db8::1]', kind: 'exact' },
  { input: '::ffff:1.2.3.4', canonical: '1.2.3.4', kind: 'exact' },
  { input: '[::ffff:102:304]:443', canonical: '1.2.3.4:443', kind: 'exact', port: 443 },
  { input: '10.0.0.0/8', canonical: '10.0.0.0/8', kind: 'cidr' },
  { input: '0.0.0.0/0', canonical: '0.0.0.0/0', kind: 'cidr' },
  { input: '192.0.2.7/32', canonical: '192.0.2.7/32', kind: 'cidr' },
  { input: '2001:db8::/32', canonical: '2001:db8::/32', kind: 'cidr' },
  { input: '[2001:db8::]/32', canonical: '2001:db8::/32', kind: 'cidr' },
  { input: '::/0', canonical: '::/0', kind: 'cidr' },
  { input: '::1/128', canonical: '::1/128', kind: 'cidr' },
  { input: '::ffff:10.0.0.0/104', canonical: '10.0.0.0/8', kind: 'cidr' },
  { input: '::ffff:0.0.0.0/96', canonical: '0.0.0.0/0', kind: 'cidr' },
  {
    input: 'https://api.github.com/repos/acme/',
    canonical: 'https://api.github.com/repos/acme/',
    kind: 'exact',
    port: 443,
    url: { scheme: 'https', pathPrefix: '/repos/acme/' },
  },
  {
    input: 'HTTPS://API.github.com:443/repos/acme',
    canonical: 'https://api.github.com/repos/acme',
    kind: 'exact',
    port: 443,
    url: { scheme: 'https', pathPrefix: '/repos/acme' },
  },
  {
    input: 'http://example.com',
    canonical: 'http://example.com/',
    kind: 'exact',
    port: 80,
    url: { scheme: 'http', pathPrefix: '/' },
  },
  {
    input: 'http://example.com:8080/api',
    canonical: 'http://example.com:8080/api',
    kind: 'exact',
    port: 8080,
    url: { scheme: 'http', pathPrefix: '/api' },
  },
  {
    input: 'https://[2001:db8::7]:8443/rpc/',
    canonical: 'https://[2001:db8::7]:8443/rpc/',
    kind: 'exact',
    port: 8443,
    url: { scheme: 'https', pathPrefix: '/rpc/' },
  },
];

for (const row of FORMS) {
  test(`destination ${JSON.stringify(row.input)} is ${row.kind} ${row.canonical}`, () => {
    const destination = parsed(row.input);
    assert.equal(destination.canonical, row.canonical);
    assert.equal(destination.host.kind, row.kind);
    assert.equal(destination.port, row.port);
    assert.deepEqual(destination.url, row.url);
  });
}

const REFUSED: ReadonlyArray<readonly [input: string, says: string]> = [
  ['', 'the destination is empty'],
  ['   ', 'the destination is empty'],
  [' api.github.com', 'leading or trailing spaces'],
  ['api.github.com ', 'leading or trailing spaces'],
  ['api..github.com', 'empty label'],
  ['-api.github.com', 'invalid label'],
  ['api.github.com:', 'is not a port number'],
  ['api.github.com:0', 'is not a port number'],
  ['api.github.com:65536', 'is not a port number'],
  ['api.github.com:http', 'is not a port number'],
  // A YAML 1.1 tool reads 0443 as octal.
  [
    'api.github.com:0443',
    '"0443" is not a port number; expected 1-65535, in decimal without leading zeros',
  ],
  ['https://api.github.com:0443/', 'without leading zeros'],
  ['[::1]:0443', 'without leading zeros'],
  [':443', 'the host is empty'],
  ['*', 'whole leading label'],
  ['*example.com', 'whole leading label'],
  ['api.*.example.com', 'whole leading label'],
  ['*.*.example.com', 'wildcard'],
  ['*.127.0.0.1', 'cannot cover an IP address'],
  ['user@api.github.com', 'not a valid host name'],
  [
    'api.github.com/repos',
    'a host and a path without a scheme; write "https://api.github.com/repos"',
  ],
  ['https:/api.github.com/', 'has one "/" after "https:"; write "https://api.github.com/"'],
  ['[::1', 'no closing "]"'],
  ['[::1]8080', 'is not ":<port>"'],
  ['[::1]:', 'is not ":<port>"'],
  ['[fe80::1%eth0]', 'zone identifiers'],
  ['fe80::1%eth0', 'zone identifiers'],
  ['[fe80::1%25eth0]:443', 'zone identifiers'],
  ['::1:8080:', 'not a valid IPv6 address'],
  ['1:2:3:4:5:6:7:8:9', 'not a valid IPv6 address'],
  ['1.2.3.4::', 'not a valid IPv6 address'],
  ['[example.com]:443', 'not a valid IPv6 address'],
  ['10.0.0.0/33', 'from 0 to 32'],
  ['10.0.0.0/-1', 'from 0 to 32'],
  ['10.0.0.0/08', 'from 0 to 32'],
  ['10.0.0.0/', 'from 0 to 32'],
  ['10.1.2.3/8', 'did you mean "10.0.0.0/8"?'],
  ['192.168.1.1/24', 'did you mean "192.168.1.0/24"?'],
  ['::1/0', 'did you mean "::/0"?'],
  ['2001:db8::/129', 'from 0 to 128'],
  ['::ffff:10.0.0.0/95', 'outside the IPv4-mapped range'],
  ['::ffff:10.1.0.0/104', 'did you mean "10.0.0.0/8"?'],
  ['example.com/8', 'is not an IPv4 address in dotted decimal'],
  ['0x7f.0.0.0/8', 'is not an IPv4 address in dotted decimal'],
  ['010.0.0.0/8', 'no leading zeros'],
  ['10/8', 'is not an IPv4 address in dotted decimal'],
  ['*.', 'wildcard "*.": after "*." the host is empty'],
  // URL parsers read these as IPv4 addresses; a policy writes an address one way only.
  ['010.0.0.1', 'is read as the IPv4 address 8.0.0.1'],
  ['192.168.010.001', 'is read as the IPv4 address 192.168.8.1'],
  ['0177.0.0.1', 'write the address in dotted decimal, "127.0.0.1"'],
  ['127.1', 'is read as the IPv4 address 127.0.0.1'],
  ['10.1:8080', 'is read as the IPv4 address 10.0.0.1'],
  ['1.2.3', 'is read as the IPv4 address 1.2.0.3'],
  ['2130706433', 'is read as the IPv4 address 127.0.0.1'],
  ['0x7F000001', 'is read as the IPv4 address 127.0.0.1'],
  ['10.0.0.1.', 'an IP address takes no trailing dot; write "10.0.0.1"'],
  ['https://0x7f.1/', 'is read as the IPv4 address 127.0.0.1'],
  ['https://010.0.0.1:8443/api/', 'is read as the IPv4 address 8.0.0.1'],
  ['fe80::%eth0/64', 'zone identifiers'],
  ['ftp://example.com/', 'only http and https'],
  ['ws://example.com/', 'only http and https'],
  ['https://example.com/a?b=1', 'query or fragment'],
  ['https://example.com/a?', 'query or fragment'],
  ['https://example.com/#x', 'query or fragment'],
  ['https://user@example.com/', 'credentials'],
  ['https://user:pw@example.com/', 'credentials'],
  ['https://*.example.com/', 'not a wildcard'],
  ['https://example.com/a/../b/', 'did you mean "/b/"?'],
  ['https://example.com/a/%2e%2e/', 'encoded dots'],
  ['https://example.com//a/', 'not normalised'],
  ['https://example.com:99999/', 'not a valid URL'],
  ['https://[fe80::1%25eth0]/', 'not a valid URL'],
  ['https:///path', 'the host is empty'], // WHATWG would read the host as "path"
];
test('a zone identifier is refused for what it is, without a hint about ports it does not need', () => {
  const result = parseDestination('fe80::1%eth0');
  assert.deepEqual(result, {
    ok: false,
    problem: '"fe80::1%eth0": zone identifiers (%eth0) are not allowed in a policy',
  });
});

for (const [input, says] of REFUSED) {
  test(`destination ${JSON.stringify(input)} is refused: ${says}`, () => {
    const result = parseDestination(input);
    assert.equal(result.ok, false, `${input} should be refused`);
    if (!result.ok)
      assert.ok(
        result.problem.includes(says),
        `${JSON.stringify(result.problem)} should contain ${JSON.stringify(says)}`,
      );
  });
}

test('two spellings of one destination have one canonical text', () => {
  const groups = [
    ['API.github.com.', 'api.github.com', 'Api.GitHub.Com'],
    ['127.0.0.1', '::ffff:127.0.0.1', '[::ffff:7f00:1]'],
    ['::1', '[::1]', '0:0:0:0:0:0:0:1', '[0000::0001]'],
    ['10.0.0.0/8', '::ffff:10.0.0.0/104', '[::ffff:a00:0]/104'],
    ['https://api.github.com/x/', 'https://api.github.com:443/x/', 'HTTPS://API.GITHUB.COM./x/'],
    ['bücher.example', 'xn--bcher-kva.example', 'BÜCHER.EXAMPLE'],
  ];
  for (const group of groups) {
    const canonicals = new Set(group.map((text) => parsed(text).canonical));
    assert.equal(canonicals.size, 1, `${group.join(', ')} → ${[...canonicals].join(', ')}`);
  }
  assert.notEqual(
    parsed('http://api.github.com/x/').canonical,
    parsed('https://api.github.com/x/').canonical,
  );
  assert.notEqual(parsed('api.github.com:443').canonical, parsed('api.github.com').canonical);
});

test('hostMatches: exact names, wildcards at any depth but not the apex, IPs and CIDRs', () => {
  const host = (text: string) => {
    const result = text.startsWith('[') ? parseIpv6Literal(text.slice(1, -1)) : undefined;
    if (result) {
      assert.ok(result.ok);
      return { kind: 'ip' as const, ip: result.ip };
    }
    const name = parseNameOrIpv4(text);
    if (!name.ok) assert.fail(name.problem);
    return name.host;
  };
  const wildcard = parsed('*.example.com').host;
  assert.equal(hostMatches(wildcard, host('a.example.com')), true);
  assert.equal(hostMatches(wildcard, host('a.b.c.example.com')), true);
  assert.equal(hostMatches(wildcard, host('example.com')), false);
  assert.equal(hostMatches(wildcard, host('badexample.com')), false);
  assert.equal(hostMatches(wildcard, host('example.com.evil')), false);
  assert.equal(hostMatches(wildcard, host('127.0.0.1')), false);
  const exact = parsed('api.github.com').host;
  assert.equal(hostMatches(exact, host('API.GITHUB.COM.')), true);
  assert.equal(hostMatches(exact, host('x.api.github.com')), false);
  const ip = parsed('127.0.0.1').host;
  assert.equal(hostMatches(ip, host('0x7f000001')), true);
  assert.equal(hostMatches(ip, host('[::ffff:127.0.0.1]')), true);
  assert.equal(hostMatches(ip, host('[::1]')), false);
  const cidr = parsed('10.0.0.0/8').host;
  assert.equal(hostMatches(cidr, host('10.1.2.3')), true);
  assert.equal(hostMatches(cidr, host('[::ffff:10.1.2.3]')), true);
  assert.equal(hostMatches(cidr, host('ten.example')), false);
  const v6 = parsed('2001:db8::/32').host;
  assert.equal(hostMatches(v6, host('[2001:db8::1]')), true);
  assert.equal(hostMatches(v6, host('[2001:db9::1]')), false);
});

test('parseNameOrIpv4 and formatHost', () => {
  const ok = (text: string) => {
    const result = parseNameOrIpv4(text);
    if (!result.ok) assert.fail(result.problem);
    return formatHost(result.host);
  };
  assert.equal(ok('Example.COM.'), 'example.com');
  assert.equal(ok('ÉXAMPLE.example'), 'xn--xample-9ua.example');
  assert.equal(ok('0xC0.0250.1'), '192.168.0.1');
  assert.equal(ok('a_b.example'), 'a_b.example');
  for (const bad of [
    '',
    'a b',
    'a/b',
    'a@b',
    'a:b',
    'a%2eb',
    '*.a',
    'a..b',
    '.',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(127)}ab`,
    '1.2.3.4.5',
    '256.0.0.1',
  ]) {
    assert.equal(parseNameOrIpv4(bad).ok, false, JSON.stringify(bad));
  }
  const v6 = parseIpv6Literal('fe80::1%25eth0');
  assert.ok(v6.ok);
  if (v6.ok) {
    assert.equal(v6.zone, 'eth0');
    assert.equal(formatHost({ kind: 'ip', ip: v6.ip }), '[fe80::1]');
  }
  assert.equal(parseIpv6Literal('fe80::1%').ok, false);
});

test('parseRequestTarget: URLs (ws≡http, wss≡https, default ports) and CONNECT authorities', () => {
  const target = (text: string) => {
    const result = parseRequestTarget(text);
    if (!result.ok) assert.fail(result.problem);
    return result.target;
  };
  assert.deepEqual(target('wss://Example.com./socket?x=1'), {
    kind: 'url',
    scheme: 'https',
    host: { kind: 'name', name: 'example.com' },
    port: 443,
    pathname: '/socket',
    search: '?x=1',
    hostname: 'example.com.',
    authority: 'example.com.',
  });
  assert.deepEqual(target('ws://example.com'), {
    kind: 'url',
    scheme: 'http',
    host: { kind: 'name', name: 'example.com' },
    port: 80,
    pathname: '/',
    search: '',
    hostname: 'example.com',
    authority: 'example.com',
  });
  assert.deepEqual(target('http://example.com:443/a/./b/../c'), {
    kind: 'url',
    scheme: 'http',
    host: { kind: 'name', name: 'example.com' },
    port: 443,
    pathname: '/a/c',
    search: '',
    hostname: 'example.com',
    authority: 'example.com:443',
  });
  assert.deepEqual(target('https://example.com:443/'), {
    kind: 'url',
    scheme: 'https',
    host: { kind: 'name', name: 'example.com' },
    port: 443,
    pathname: '/',
    search: '',
    hostname: 'example.com',
    authority: 'example.com',
  });
  assert.deepEqual(target('[fe80::1%eth0]:443'), {
    kind: 'authority',
    host: { kind: 'ip', ip: { family: 6, value: (0xfe80n << 112n) | 1n } },
    port: 443,
  });
  assert.deepEqual(target('0x7f.1:8080'), {
    kind: 'authority',
    host: { kind: 'ip', ip: { family: 4, value: 0x7f000001 } },
    port: 8080,
  });
  for (const bad of [
    'example.com',
    'example.com:',
    'example.com:0',
    'example.com:70000',
    '::1:443',
    '[::1]',
    'file:///etc/passwd',
    'gopher://x/',
    'https://',
    'http://[::1%25eth0]/',
    'exa mple.com:443',
    'a/b:443',
  ]) {
    assert.equal(parseRequestTarget(bad).ok, false, bad);
  }
});
