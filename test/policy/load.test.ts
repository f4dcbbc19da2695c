// Loading policies: every malformed fixture is refused with the exact position, key path,
// code and a message that says what is expected; valid policies load unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decide,
  formatPolicyError,
  MAX_LISTED_ERRORS,
  MAX_POLICY_BYTES,
  parsePolicy,
  type Policy,
  type PolicyError,
  type PolicyErrorCode,
} from '../../src/policy/index.js';
import { scratchDir } from '../scratch.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const malformedDir = join(root, 'fixtures/policies/malformed');
const referencePath = join(root, 'fixtures/policies/reference.yaml');

interface Expected {
  readonly code: PolicyErrorCode;
  readonly line: number;
  readonly col: number;
  readonly path: string;
  /** Substrings the message must contain. */
  readonly says: readonly string[];
}

const e = (
  code: PolicyErrorCode,
  line: number,
  col: number,
  path: string,
  ...says: string[]
): Expected => ({
  code,
  line,
  col,
  path,
  says,
});

const FORMS = 'expected a host (api.github.com)';

const MALFORMED: Record<string, readonly Expected[]> = {
  'unknown-key-top-level': [
    e(
      'unknown_key',
      4,
      1,
      'defualt_deny',
      'unknown key "defualt_deny"',
      'did you mean "default_deny"?',
    ),
  ],
  'unknown-key-in-rule': [
    e('unknown_key', 4, 5, 'egress[0].method', 'unknown key "method"', 'did you mean "methods"?'),
  ],
  'unknown-key-no-suggestion': [
    e(
      'unknown_key',
      4,
      5,
      'egress[0].xyzzy',
      'unknown key "xyzzy"',
      'expected one of destination, methods, scan, paths, ports, tls',
    ),
  ],
  'unknown-key-nested-dlp': [
    e('unknown_key', 7, 7, 'dlp.patterns[0].regexp', 'did you mean "regex"?'),
  ],
  'wrong-type-scan-string': [
    e('wrong_type', 4, 11, 'egress[0].scan', 'got the string "yes"', 'expected true or false'),
  ],
  'wrong-type-egress-mapping': [
    e('wrong_type', 3, 3, 'egress', 'got a mapping', 'expected a list'),
  ],
  'wrong-type-destination-number': [
    e('wrong_type', 3, 18, 'egress[0].destination', 'got the number 443', 'expected a string'),
  ],
  'wrong-type-top-level-list': [e('wrong_type', 1, 1, '', 'top level is not a mapping')],
  'empty-file': [e('wrong_type', 1, 1, '', 'the file is empty', 'version and egress')],
  'missing-destination': [
    e('missing_key', 3, 5, 'egress[0].destination', 'required key "destination" is missing'),
  ],
  'missing-version': [e('missing_key', 1, 1, 'version', 'required key "version" is missing')],
  'version-number': [
    e('unsupported_version', 1, 10, 'version', 'expected version: "1.0" (quoted)'),
  ],
  'version-2': [
    e('unsupported_version', 1, 10, 'version', 'not supported', 'expected version: "1.0"'),
  ],
  'bad-destination-wildcard-middle': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      '"api.*.example.com"',
      'only allowed as a whole leading label',
      '"*.example.com"',
    ),
  ],
  'bad-destination-empty': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'the destination is empty', FORMS),
  ],
  'bad-destination-port-out-of-range': [
    e('bad_destination', 3, 18, 'egress[0].destination', '"70000" is not a port number', '1-65535'),
  ],
  'bad-destination-zone-id': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      'zone identifiers (%eth0) are not allowed',
    ),
  ],
  'bad-destination-scheme': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'scheme "ftp"', 'only http and https'),
  ],
  'bad-destination-empty-label': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'empty label', FORMS),
  ],
  'bad-destination-wildcard-ip': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'a wildcard cannot cover an IP address'),
  ],
  'bad-destination-url-wildcard': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'must name one host, not a wildcard'),
  ],
  'url-prefix-query': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      'query or fragment',
      'scheme, host and path only',
    ),
  ],
  'url-prefix-fragment': [
    e('bad_destination', 3, 18, 'egress[0].destination', '#top', 'query or fragment'),
  ],
  'url-prefix-credentials': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'must not contain credentials'),
  ],
  'cidr-prefix-too-long': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      'invalid CIDR "10.0.0.0/33"',
      'from 0 to 32',
    ),
  ],
  'cidr-host-bits-set': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      'host bits are set',
      'did you mean "10.0.0.0/8"?',
    ),
  ],
  'cidr-v6-host-bits-set': [
    e(
      'bad_destination',
      3,
      18,
      'egress[0].destination',
      'host bits are set',
      'did you mean "2001:db8::/32"?',
    ),
  ],
  'cidr-v6-prefix-too-long': [
    e('bad_destination', 3, 18, 'egress[0].destination', 'from 0 to 128'),
  ],
  'allows-everything': [
    e('allows_everything', 3, 15, 'default_deny', 'allows every destination', 'default_deny: true'),
  ],
  'bad-method': [
    e('bad_method', 4, 22, 'egress[0].methods[1]', 'got the string "GETT"', 'did you mean "GET"?'),
    e('bad_method', 4, 30, 'egress[0].methods[2]', 'got the string "post"', 'did you mean "POST"?'),
  ],
  'empty-methods': [
    e('empty_list', 4, 14, 'egress[0].methods', 'the list is empty', 'at least one method'),
  ],
  'duplicate-rule': [
    e(
      'duplicate_rule',
      5,
      18,
      'egress[1].destination',
      'duplicates egress[0]',
      'merge the two rules',
    ),
  ],
  'conflict-passthrough-and-inspected-rule': [
    e(
      'conflict',
      4,
      10,
      'egress[0].tls',
      'egress[1] needs to see inside TLS for hosts and ports this rule covers too',
      'remove one of the two rules',
    ),
  ],
  // Overlap, not equal text: a wildcard, a subdomain wildcard, a network holding the address.
  // Beside rules that share no host (a wildcard and another apex, two networks), nothing.
  'conflict-passthrough-and-overlapping-rules': [
    e('conflict', 6, 10, 'egress[1].tls', 'egress[0] needs to see inside TLS'),
    e('conflict', 8, 10, 'egress[2].tls', 'egress[3] needs to see inside TLS'),
    e('conflict', 12, 10, 'egress[4].tls', 'egress[5] needs to see inside TLS'),
  ],
  'duplicate-rule-default-ports': [
    e('duplicate_rule', 5, 18, 'egress[1].destination', 'duplicates egress[0]'),
  ],
  'missing-destination-with-other-key': [
    e('missing_key', 3, 5, 'egress[0].destination', 'required key "destination" is missing'),
  ],
  'url-prefix-with-ports': [
    e(
      'conflict',
      4,
      12,
      'egress[0].ports',
      'a URL prefix fixes its port (here 443, the default for https)',
      'https://host:PORT/',
    ),
  ],
  'document-after-end-marker': [e('multiple_documents', 4, 1, '', '"..."')],
  // The parser says two things of that spot; the first is the cause.
  'yaml-over-indented': [
    e('yaml_syntax', 3, 18, '', 'Nested mappings', 'check the indentation of the next line'),
  ],
  'duplicate-rule-port-spellings': [
    e('duplicate_rule', 5, 18, 'egress[1].destination', 'duplicates egress[0]'),
    e('duplicate_rule', 9, 18, 'egress[3].destination', 'duplicates egress[2]'),
    e('duplicate_rule', 12, 18, 'egress[5].destination', 'duplicates egress[4]'),
  ],
  // A YAML 1.1 tool reads 0443 as 291; 0o1273, 0x1BB, 4.43e2 and .inf are not numbers to some.
  'numbers-not-plain-decimal': [
    e('disputed_number', 4, 13, '', 'the number 0443 is not written in plain decimal', 'write 443'),
    e('disputed_number', 4, 19, '', 'the number 0o1273', 'write 699'),
    e('disputed_number', 4, 27, '', 'the number 4.43e2', 'write 443'),
    e('disputed_number', 4, 35, '', 'the number 0x1BB', 'write 443'),
    e('disputed_number', 4, 42, '', 'the number .inf', 'write a whole number'),
  ],
  'duplicate-rule-ip-notations': [
    e('duplicate_rule', 4, 18, 'egress[1].destination', 'duplicates egress[0]'),
  ],
  'proxy-path': [e('invalid_value', 6, 15, 'websocket.proxy_path', 'expected "/ws?url="')],
  'bad-mode': [e('invalid_value', 2, 7, 'mode', 'got the string "audti"', 'did you mean "audit"?')],
  'bad-dns-resolution': [e('invalid_value', 4, 17, 'dns_resolution', '"proxy_only"')],
  'bad-path': [
    e('bad_path', 4, 13, 'egress[0].paths[0]', '"repos" must start with "/"'),
    e('bad_path', 4, 22, 'egress[0].paths[1]', 'not normalised', 'did you mean "/admin"?'),
    e('bad_path', 4, 41, 'egress[0].paths[2]', 'must not contain encoded dots'),
  ],
  'bad-path-glob': [
    e('bad_path', 4, 13, 'egress[0].paths[0]', 'not globs', 'did you mean "/repos/"?'),
    e('bad_path', 4, 25, 'egress[0].paths[1]', 'not globs', 'did you mean "/v1/"?'),
    e('bad_destination', 5, 18, 'egress[1].destination', 'not globs'),
    e('bad_destination', 6, 18, 'egress[2].destination', 'more than one ":"', 'host:port'),
  ],
  'bad-port': [
    e('bad_port', 4, 13, 'egress[0].ports[0]', 'from 1 to 65535'),
    e('bad_port', 4, 16, 'egress[0].ports[1]', 'from 1 to 65535'),
  ],
  'conflict-tls-passthrough': [
    e('conflict', 4, 10, 'egress[0].tls', '"tls: passthrough"', '"methods"', '"scan: true"'),
  ],
  'conflict-ports-and-port': [e('conflict', 4, 12, 'egress[0].ports', 'already fixes port 8443')],
  'conflict-paths-and-url-prefix': [
    e('conflict', 4, 12, 'egress[0].paths', 'either "paths" or a URL prefix'),
  ],
  'bad-env-name': [
    e('bad_env_name', 5, 10, 'secrets[0].env', '"1TOKEN" is not an environment variable name'),
  ],
  'bad-pattern': [
    e('bad_pattern', 7, 14, 'dlp.patterns[0].regex', 'not a valid regular expression'),
    e('bad_pattern', 9, 14, 'dlp.patterns[1].regex', 'can match the empty string'),
    // Not on the empty text alone: at a word edge, before a character, at a line start.
    e('bad_pattern', 11, 14, 'dlp.patterns[2].regex', 'can match the empty string'),
    e('bad_pattern', 13, 14, 'dlp.patterns[3].regex', 'can match the empty string'),
    e('bad_pattern', 15, 14, 'dlp.patterns[4].regex', 'can match the empty string'),
    // Nor on any short text: read from the pattern, not tried on samples.
    e('bad_pattern', 17, 14, 'dlp.patterns[5].regex', 'can match the empty string'),
    e('bad_pattern', 19, 14, 'dlp.patterns[6].regex', 'can match the empty string'),
  ],
  'yaml-syntax': [e('yaml_syntax', 3, 33, '', 'YAML syntax error', 'quote')],
  'yaml-syntax-flow': [e('yaml_syntax', 3, 1, '', 'YAML syntax error', 'Flow sequence')],
  'multiple-documents': [e('multiple_documents', 4, 1, '', 'more than one YAML document', '"---"')],
  'anchor-alias': [
    e('alias_not_allowed', 3, 22, '', 'anchor &gh is not allowed'),
    e('alias_not_allowed', 5, 18, '', 'alias *gh is not allowed'),
  ],
  tag: [e('tag_not_allowed', 3, 24, '', 'tag tag:yaml.org,2002:str is not allowed')],
  // YAML 1.1 would read 0443 as 291 and `<<` as a merge key: no directive changes the reading.
  'yaml-1-1-directive': [e('directive_not_allowed', 1, 1, '', 'directive %YAML is not allowed')],
  'tag-directive': [e('directive_not_allowed', 2, 1, '', 'directive %TAG is not allowed')],
  'complex-key': [e('wrong_type', 4, 7, '', 'a sequence is not a key')],
  'duplicate-key': [e('duplicate_key', 5, 1, '', 'appears twice')],
  'non-utf8': [e('not_utf8', 3, 20, '', 'byte 0xfc is not valid UTF-8')],
  'several-errors': [
    e('invalid_value', 2, 7, 'mode', 'did you mean "enforce"?'),
    e('bad_destination', 4, 18, 'egress[0].destination', 'empty label'),
    e('bad_method', 5, 22, 'egress[0].methods[1]', '"FETCH"', 'did you mean "PATCH"?'),
    e('unknown_key', 6, 5, 'egress[0].scna', 'did you mean "scan"?'),
    e('bad_destination', 7, 18, 'egress[1].destination', 'did you mean "10.0.0.0/8"?'),
    e('bad_port', 8, 13, 'egress[1].ports[0]', 'from 1 to 65535'),
    // Cross-field checks still run while other fields are invalid.
    e('conflict', 10, 10, 'egress[2].tls', '"scan: true"'),
    e('duplicate_rule', 12, 18, 'egress[3].destination', 'duplicates egress[2]'),
    e('invalid_value', 14, 15, 'websocket.proxy_path', 'expected "/ws?url="'),
  ],
  'bad-path-not-encoded': [
    e(
      'bad_path',
      4,
      13,
      'egress[0].paths[0]',
      'not percent-encoded',
      'did you mean "/caf%C3%A9/"?',
    ),
    e(
      'bad_destination',
      5,
      18,
      'egress[1].destination',
      'URL prefix path "/a b/"',
      'did you mean "/a%20b/"?',
    ),
  ],
  'conflict-with-other-errors': [
    e('conflict', 4, 12, 'egress[0].ports', 'already fixes port 443'),
    e('bad_port', 4, 13, 'egress[0].ports[0]', 'from 1 to 65535'),
    e('conflict', 5, 10, 'egress[0].tls', '"methods"'),
    e('bad_method', 6, 20, 'egress[0].methods[1]', 'did you mean "DELETE"?'),
    e('wrong_type', 7, 11, 'egress[0].scan', 'expected true or false'),
  ],
  'allows-everything-with-bad-version': [
    e('unsupported_version', 1, 10, 'version', 'expected version: "1.0"'),
    e('allows_everything', 3, 15, 'default_deny', 'allows every destination'),
  ],
};

function load(name: string) {
  const file = `malformed/${name}.yaml`;
  return { file, result: parsePolicy(readFileSync(join(malformedDir, `${name}.yaml`)), file) };
}

function assertErrors(
  actual: readonly PolicyError[],
  expected: readonly Expected[],
  file: string,
): void {
  assert.deepEqual(
    actual.map(({ code, line, col, path }) => ({ code, line, col, path })),
    expected.map(({ code, line, col, path }) => ({ code, line, col, path })),
    actual.map(formatPolicyError).join('\n'),
  );
  actual.forEach((error, index) => {
    assert.equal(error.file, file);
    for (const text of expected[index]?.says ?? []) {
      assert.ok(
        error.message.includes(text),
        `message ${JSON.stringify(error.message)} should contain ${JSON.stringify(text)}`,
      );
    }
  });
}

for (const [name, expected] of Object.entries(MALFORMED)) {
  test(`malformed/${name}.yaml is refused with ${expected.map((x) => `${x.code}@${x.line}:${x.col}`).join(', ')}`, () => {
    const { file, result } = load(name);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assertErrors(result.errors, expected, file);
  });
}

test('every fixture in fixtures/policies/malformed has an expectation', () => {
  const names = readdirSync(malformedDir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
  const covered = [...Object.keys(MALFORMED), 'billion-laughs'].sort();
  assert.deepEqual(names, covered);
});

test('the unknown-key fixtures are spelled as the suggestions say', () => {
  // Guards the fixtures themselves: the typo must really be in the file at the reported line.
  const text = readFileSync(join(malformedDir, 'unknown-key-top-level.yaml'), 'utf8').split('\n');
  assert.equal(text[3], 'defualt_deny: true');
  const rule = readFileSync(join(malformedDir, 'duplicate-rule.yaml'), 'utf8');
  assert.ok(rule.includes('"API.github.com."') && rule.includes('"api.github.com"'));
});

test('billion-laughs.yaml (9^10 expansion) is refused quickly, before any alias is expanded', () => {
  const started = process.hrtime.bigint();
  const { file, result } = load('billion-laughs');
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.ok(elapsedMs < 2000, `took ${elapsedMs} ms`);
  // 10 anchors and 9*9 + 1 aliases, each reported where it is written: the first 50 listed
  // (in order of position: 6 anchors among them).
  assert.equal(result.total, 92);
  const listed = result.errors.slice(0, -1);
  assert.equal(listed.length, MAX_LISTED_ERRORS);
  assert.ok(listed.every((error) => error.code === 'alias_not_allowed' && error.file === file));
  assert.equal(listed.filter((error) => error.message.startsWith('anchor')).length, 6);
  assertErrors(
    result.errors.slice(0, 1),
    [e('alias_not_allowed', 1, 11, '', 'anchor &l0 is not allowed')],
    file,
  );
  assert.equal(result.errors.at(-1)?.message.startsWith('42 more errors'), true);
});

test('a non-UTF-8 file written at test time (overlong "/" after a valid ü) is refused at the bad byte', () => {
  const dir = scratchDir('policy-');
  const file = join(dir, 'overlong.yaml');
  const bytes = Buffer.concat([
    Buffer.from('version: "1.0"\n# über\negress:\n  - destination: "https://a.example.com', 'utf8'),
    Buffer.from([0xc0, 0xaf]),
    Buffer.from('"\n', 'utf8'),
  ]);
  writeFileSync(file, bytes);
  const result = parsePolicy(readFileSync(file), file);
  assert.equal(result.ok, false);
  if (result.ok) return;
  assertErrors(
    result.errors,
    [e('not_utf8', 4, 40, '', 'byte 0xc0 is not valid UTF-8', 'save the file as UTF-8')],
    file,
  );
});

for (const [char, says] of [
  ['\r', 'a carriage return (CR) that is not part of a CRLF line ending'],
  ['\u0085', 'a NEXT LINE character (U+0085)'],
  ['\u2028', 'a LINE SEPARATOR character (U+2028)'],
  ['\u2029', 'a PARAGRAPH SEPARATOR character (U+2029)'],
] as const) {
  test(`${says} is refused where it stands: some readers start a new line there, others read on`, () => {
    // To this YAML reader the methods line is part of the comment (any method); to others it
    // is a rule of its own (GET only): the reviewer and the engine would see different policies.
    const text = `version: "1.0"\negress:\n  - destination: api.github.com # GitHub API${char}    methods: [GET]\ndefault_deny: true\n`;
    const result = parsePolicy(Buffer.from(text, 'utf8'), 'disputed.yaml');
    assert.equal(result.ok, false);
    if (result.ok) return;
    assertErrors(
      result.errors,
      [
        e(
          'disputed_line_break',
          3,
          45,
          '',
          says,
          'YAML readers disagree on whether it ends a line',
        ),
      ],
      'disputed.yaml',
    );
  });
}

test('the not_utf8 column counts characters, like every other column, not bytes', () => {
  // "bücher" then a stray Latin-1 byte: the bad byte is the 7th character after the quote, but the 8th byte.
  const bytes = Buffer.concat([
    Buffer.from('version: "1.0"\negress:\n  - destination: "bücher', 'utf8'),
    Buffer.from([0xe9]),
    Buffer.from('.example"\n'),
  ]);
  const result = parsePolicy(bytes, 'latin1.yaml');
  assert.equal(result.ok, false);
  if (result.ok) return;
  assertErrors(result.errors, [e('not_utf8', 3, 25, '', 'byte 0xe9')], 'latin1.yaml');
});

test('an encoded UTF-16 surrogate (ED A0 80) is not UTF-8', () => {
  const bytes = Buffer.concat([
    Buffer.from('version: "1.0"\negress: []\n# ', 'utf8'),
    Buffer.from([0xed, 0xa0, 0x80]),
  ]);
  const result = parsePolicy(bytes, 'surrogate.yaml');
  assert.equal(result.ok, false);
  if (result.ok) return;
  assertErrors(result.errors, [e('not_utf8', 3, 3, '', 'byte 0xed')], 'surrogate.yaml');
});

test('a file over the size limit is refused before parsing', () => {
  const bytes = Buffer.alloc(MAX_POLICY_BYTES + 1, 0x20);
  const result = parsePolicy(bytes, 'huge.yaml');
  assert.equal(result.ok, false);
  if (result.ok) return;
  assertErrors(
    result.errors,
    [
      e(
        'file_too_large',
        1,
        1,
        '',
        `more than ${MAX_POLICY_BYTES} bytes`,
        `at most ${MAX_POLICY_BYTES}`,
      ),
    ],
    'huge.yaml',
  );
});

test('a flood of errors lists the first 50 and then how many more were found', () => {
  const commas = ','.repeat(10_000);
  const result = parsePolicy(Buffer.from(`version: "1.0"\negress: [${commas}]\n`), 'flood.yaml');
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(result.errors.length, MAX_LISTED_ERRORS + 1);
  // One per comma after the first (the parser says it twice of the last: once here).
  assert.equal(result.total, 9_999);
  assertErrors(
    result.errors.slice(-1),
    [e('too_many_errors', 2, 61, '', '9949 more errors from here on are not listed')],
    'flood.yaml',
  );
});

test('nesting too deep for a policy is one error where it starts, found before parsing', () => {
  const open = (bracket: string) =>
    parsePolicy(
      Buffer.from(`version: "1.0"\negress: []\nx: ${bracket.repeat(300_000)}`),
      'deep.yaml',
    );
  for (const bracket of ['[', '{']) {
    const started = process.hrtime.bigint();
    const result = open(bracket);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(elapsedMs < 1000, `took ${elapsedMs} ms`);
    assert.equal(result.ok, false);
    if (result.ok) return;
    assertErrors(
      result.errors,
      [e('too_deeply_nested', 3, 68, '', 'nest too deeply')],
      'deep.yaml',
    );
  }
  // Block mappings 1400 deep run the YAML library out of stack: said once, not 800 times.
  const block = Array.from({ length: 1400 }, (_, level) => `${' '.repeat(level)}a:`).join('\n');
  const result = parsePolicy(
    Buffer.from(`version: "1.0"\negress: []\nx:\n${block}\n`),
    'deep.yaml',
  );
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(
    result.errors.map((error) => error.code),
    ['too_deeply_nested'],
  );
});

test('thousands of passthrough and inspected rules are checked for conflicts in near-linear time', () => {
  const rules = Array.from(
    { length: 5500 },
    (_, i) =>
      `  - {destination: "p${i}.example", tls: passthrough}\n  - {destination: "s${i}.example", scan: true}\n  - {destination: "*.w${i}.example", tls: passthrough}\n`,
  ).join('');
  const conflicting = '  - {destination: "x.w7.example", methods: [GET]}\n';
  const started = process.hrtime.bigint();
  const result = parsePolicy(
    Buffer.from(`version: "1.0"\negress:\n${rules}${conflicting}`),
    'many.yaml',
  );
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(elapsedMs < 15_000, `took ${elapsedMs} ms`);
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(
    result.errors.map((error) => [error.code, error.path, error.message.split(' ')[0]]),
    [['conflict', 'egress[23].tls', 'egress[16500]']],
  );
});

test('errors are sorted by line then column', () => {
  const { result } = load('several-errors');
  assert.equal(result.ok, false);
  if (result.ok) return;
  const positions = result.errors.map((error) => [error.line, error.col] as const);
  const sorted = [...positions].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  assert.deepEqual(positions, sorted);
  assert.equal(result.errors.length, 9);
});

test('formatPolicyError names file:line:col and the key path', () => {
  const { result } = load('unknown-key-in-rule');
  const first = result.ok ? undefined : result.errors[0];
  if (first === undefined) return assert.fail('expected an error');
  assert.equal(
    formatPolicyError(first),
    'malformed/unknown-key-in-rule.yaml:4:5: egress[0].method: unknown key "method"; did you mean "methods"?',
  );
  const { result: syntax } = load('duplicate-key');
  const duplicate = syntax.ok ? undefined : syntax.errors[0];
  if (duplicate === undefined) return assert.fail('expected an error');
  assert.equal(
    formatPolicyError(duplicate),
    'malformed/duplicate-key.yaml:5:1: key "default_deny" appears twice in the same mapping (first at line 4, column 1); keep one',
  );
});

test('a key that is a number, a boolean or null is reported where it is written, as written', () => {
  for (const key of ['1', 'true', '~', 'null']) {
    const result = parsePolicy(
      Buffer.from(`version: "1.0"\negress:\n  - destination: "a.test"\n    ${key}: x\n`),
      'keys.yaml',
    );
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.deepEqual(
      result.errors.map(({ code, line, col, message }) => [code, line, col, message.split(';')[0]]),
      [['unknown_key', 4, 5, `unknown key "${key}"`]],
    );
  }
});

function mustLoad(text: string | Uint8Array, file = 'inline.yaml'): Policy {
  const result = parsePolicy(
    typeof text === 'string' ? new TextEncoder().encode(text) : text,
    file,
  );
  if (!result.ok) assert.fail(result.errors.map(formatPolicyError).join('\n'));
  return result.policy;
}

test('reference.yaml loads unchanged with the values it states', () => {
  const bytes = readFileSync(referencePath);
  const policy = mustLoad(bytes, 'fixtures/policies/reference.yaml');
  assert.equal(policy.version, '1.0');
  assert.equal(policy.mode, 'enforce');
  assert.equal(policy.default_deny, true);
  assert.equal(policy.dns_resolution, 'proxy_only');
  assert.deepEqual(policy.websocket, { enabled: true, frame_scan: true, proxy_path: '/ws?url=' });
  assert.deepEqual(policy.secrets, []);
  assert.deepEqual(policy.dlp, { builtin: true, patterns: [] });
  assert.equal(policy.file, 'fixtures/policies/reference.yaml');
  assert.deepEqual(
    policy.egress.map((rule) => ({
      index: rule.index,
      line: rule.line,
      destination: rule.destination.canonical,
      methods: rule.methods,
      scan: rule.scan,
      paths: rule.paths,
      ports: rule.ports,
      tls: rule.tls,
    })),
    [
      {
        index: 0,
        line: 3,
        destination: 'api.github.com',
        methods: ['GET', 'POST'],
        scan: true,
        paths: undefined,
        ports: undefined,
        tls: undefined,
      },
      {
        index: 1,
        line: 6,
        destination: 'registry.npmjs.org',
        methods: ['GET'],
        scan: false,
        paths: undefined,
        ports: undefined,
        tls: undefined,
      },
      {
        index: 2,
        line: 9,
        destination: 'docs.example.com',
        methods: ['GET', 'POST'],
        scan: true,
        paths: undefined,
        ports: undefined,
        tls: undefined,
      },
    ],
  );
});

test('the policy hash is the lowercase hex SHA-256 of the exact file bytes', () => {
  const bytes = readFileSync(referencePath);
  const policy = mustLoad(bytes);
  assert.equal(policy.hash, createHash('sha256').update(bytes).digest('hex'));
  assert.match(policy.hash, /^[0-9a-f]{64}$/);
  // One more byte (a trailing comment) is the same policy but a different file, so a different hash.
  const edited = mustLoad(Buffer.concat([bytes, Buffer.from('# note\n')]));
  assert.notEqual(edited.hash, policy.hash);
  assert.deepEqual(
    edited.egress.map((r) => r.destination.canonical),
    policy.egress.map((r) => r.destination.canonical),
  );
});

test('reference.yaml with CRLF line endings and a BOM still loads (hash over the bytes as given)', () => {
  const crlf = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(readFileSync(referencePath, 'utf8').replaceAll('\n', '\r\n')),
  ]);
  const policy = mustLoad(crlf);
  assert.equal(policy.egress.length, 3);
  assert.equal(policy.hash, createHash('sha256').update(crlf).digest('hex'));
});

const EVERY_KEY = `version: "1.0"
mode: audit
egress:
  - destination: "api.github.com"
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
    scan: true
    paths: ["/repos/acme", "/user/"]
    ports: [443, 8443]
  - destination: "*.githubusercontent.com"
  - destination: "pinned.example.com:443"
    tls: passthrough
  - destination: "https://uploads.example.com/v1/"
  - destination: "10.0.0.0/8"
  - destination: "[2001:db8::]/32"
  - destination: "[::1]:8080"
  - destination: "bücher.example"
websocket:
  enabled: true
  frame_scan: false
  proxy_path: "/ws?url="
default_deny: false
dns_resolution: "proxy_only"
secrets:
  - env: AGENT_TOKEN
    allow: ["api.github.com", "*.github.com"]
dlp:
  builtin: false
  patterns:
    - name: acme-key
      regex: "acme_[A-Za-z0-9]{32}"
`;

test('a policy using every extension key loads with the values it states', () => {
  const policy = mustLoad(EVERY_KEY);
  assert.equal(policy.mode, 'audit');
  assert.equal(policy.default_deny, false);
  assert.deepEqual(policy.websocket, { enabled: true, frame_scan: false, proxy_path: '/ws?url=' });
  assert.deepEqual(
    policy.egress.map((rule) => rule.destination.canonical),
    [
      'api.github.com',
      '*.githubusercontent.com',
      'pinned.example.com:443',
      'https://uploads.example.com/v1/',
      '10.0.0.0/8',
      '2001:db8::/32',
      '[::1]:8080',
      'xn--bcher-kva.example',
    ],
  );
  assert.deepEqual(
    policy.egress.map((rule) => rule.line),
    [4, 9, 10, 12, 13, 14, 15, 16],
  );
  const first = policy.egress[0];
  assert.deepEqual(first?.paths, ['/repos/acme', '/user/']);
  assert.deepEqual(first?.ports, [443, 8443]);
  assert.equal(first?.methods?.length, 8);
  assert.equal(policy.egress[2]?.tls, 'passthrough');
  assert.equal(policy.egress[1]?.scan, false);
  assert.equal(policy.secrets[0]?.env, 'AGENT_TOKEN');
  assert.deepEqual(
    policy.secrets[0]?.allow.map((d) => d.canonical),
    ['api.github.com', '*.github.com'],
  );
  assert.deepEqual(policy.dlp, {
    builtin: false,
    patterns: [{ name: 'acme-key', regex: 'acme_[A-Za-z0-9]{32}' }],
  });
});

test('defaults: mode enforce, default_deny true, websocket off, dlp builtin on', () => {
  const policy = mustLoad('version: "1.0"\negress:\n  - destination: a.example.com\n');
  assert.equal(policy.mode, 'enforce');
  assert.equal(policy.default_deny, true);
  assert.equal(policy.dns_resolution, 'proxy_only');
  assert.deepEqual(policy.websocket, { enabled: false, frame_scan: true, proxy_path: '/ws?url=' });
  assert.deepEqual(policy.dlp, { builtin: true, patterns: [] });
  assert.equal(policy.egress[0]?.scan, false);
});

test('egress: [] is valid when default_deny stays true (nothing allowed)', () => {
  const policy = mustLoad('version: "1.0"\negress: []\n');
  assert.deepEqual(policy.egress, []);
});

test('two rules for one host on different ports are not duplicates', () => {
  const policy = mustLoad(
    'version: "1.0"\negress:\n  - destination: a.example.com\n    ports: [8080]\n  - destination: a.example.com\n',
  );
  assert.equal(policy.egress.length, 2);
});

test('tls: passthrough beside an http:// URL prefix for the same host is no conflict (plain HTTP is not inside TLS)', () => {
  const result = parsePolicy(
    Buffer.from(`version: "1.0"
egress:
  - destination: "http://a.test/x/"
    methods: ["GET"]
  - destination: "a.test"
    tls: passthrough
`),
    'plain.yaml',
  );
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatPolicyError).join('\n'));
  const tunnel = decide(result.policy, { method: 'CONNECT', target: 'a.test:80' });
  assert.deepEqual([tunnel.verdict, tunnel.intercept], ['allow', false]);
});

test('tls: passthrough beside an inspected rule for another port of the same host is no conflict', () => {
  const result = parsePolicy(
    Buffer.from(`version: "1.0"
egress:
  - destination: "pinned.example.com"
    ports: [443]
    tls: passthrough
  - destination: "pinned.example.com:8443"
    methods: ["GET"]
`),
    'ports.yaml',
  );
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatPolicyError).join('\n'));
});
