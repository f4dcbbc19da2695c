import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInputs } from '../../src/action/inputs.js';
import { runArgv } from '../../src/action/run-invocation.js';
import { parseNamePin, parseNamePins } from '../../src/engine/name-pin.js';
import { rawInputs } from './helpers.js';

const minimal = { 'agent-script': 'scripts/agent.sh', 'policy-config': 'policy.yaml' };

test('minimal inputs parse with action.yml defaults', () => {
  const result = parseInputs(rawInputs(minimal));
  assert.ok(result.ok);
  assert.equal(result.inputs['agent-script'], 'scripts/agent.sh');
  assert.deepEqual(result.inputs['agent-args'], []);
  assert.equal(result.inputs['fail-on-verifier-error'], true);
  assert.equal(result.inputs['upload-artifact'], true);
  assert.equal(result.inputs['job-summary'], true);
  assert.equal(result.inputs['evidence-output'], 'audit-artifacts');
  assert.equal(result.inputs['agent-identity'], 'github-actions-agent');
  assert.equal(result.inputs['signing-key'], undefined);
});

test('agent-args: one argument per line, blank lines inside are empty arguments', () => {
  const result = parseInputs(
    rawInputs({ ...minimal, 'agent-args': '--repo\nacme/widgets\n\nlast word\n' }),
  );
  assert.ok(result.ok);
  assert.deepEqual(result.inputs['agent-args'], ['--repo', 'acme/widgets', '', 'last word']);
});

test('agent-args: spaces in an argument are kept, at the ends of the input too', () => {
  const result = parseInputs(rawInputs({ ...minimal, 'agent-args': '  first\n  mid  \nlast  \n' }));
  assert.ok(result.ok);
  assert.deepEqual(result.inputs['agent-args'], ['  first', '  mid  ', 'last  ']);
});

test('booleans accept the spellings of core.getBooleanInput only', () => {
  const ok = parseInputs(
    rawInputs({ ...minimal, 'job-summary': 'FALSE', 'upload-artifact': 'False' }),
  );
  assert.ok(ok.ok);
  assert.equal(ok.inputs['job-summary'], false);
  assert.equal(ok.inputs['upload-artifact'], false);
  const bad = parseInputs(rawInputs({ ...minimal, 'job-summary': 'yes' }));
  assert.ok(!bad.ok);
  assert.deepEqual(bad.errors, ['input job-summary: expected true or false, got "yes"']);
});

test('every bad input is reported at once, each naming its input', () => {
  const result = parseInputs(
    rawInputs({
      'agent-script': '',
      'policy-config': 'a\nb',
      'pipelock-version': 'latest',
      'pipelock-sha256': 'abc',
      'pipelock-download-url': 'http://example.test/pipelock.tgz',
      'agent-identity': 'bad\u0007bell',
      'artifact-name': 'a/b',
      'fail-on-verifier-error': '1',
      resolve: 'api.example.test:not-an-ip',
    }),
  );
  assert.ok(!result.ok);
  const named = result.errors.map((error) => error.slice(0, error.indexOf(':')));
  assert.deepEqual(named, [
    'input agent-script',
    'input policy-config',
    'input pipelock-version',
    'input pipelock-sha256',
    'input pipelock-download-url',
    'input agent-identity',
    'input fail-on-verifier-error',
    'input artifact-name',
    'input resolve',
  ]);
});

test('public-key without signing-key is refused with the way out', () => {
  const result = parseInputs(rawInputs({ ...minimal, 'public-key': 'a'.repeat(64) }));
  assert.ok(!result.ok);
  assert.match(
    result.errors[0] ?? '',
    /^input public-key: a pinned public key needs the matching signing-key/,
  );
});

test('pipelock-version needs pipelock-sha256 and excludes enforcement-binary', () => {
  const noSum = parseInputs(rawInputs({ ...minimal, 'pipelock-version': 'v2.4.0' }));
  assert.ok(!noSum.ok);
  assert.match(
    noSum.errors.join('\n'),
    /input pipelock-sha256: a downloaded pipelock release is checked/,
  );
  const both = parseInputs(
    rawInputs({
      ...minimal,
      'pipelock-version': '2.4.0',
      'pipelock-sha256': 'A'.repeat(64),
      'enforcement-binary': '/usr/local/bin/pipelock',
    }),
  );
  assert.ok(!both.ok);
  assert.match(both.errors.join('\n'), /input pipelock-version: set either enforcement-binary/);
  const good = parseInputs(
    rawInputs({ ...minimal, 'pipelock-version': 'v2.4.0', 'pipelock-sha256': 'A'.repeat(64) }),
  );
  assert.ok(good.ok);
  assert.equal(good.inputs['pipelock-version'], '2.4.0');
  assert.equal(good.inputs['pipelock-sha256'], 'a'.repeat(64));
});

test('resolve pins: host:ip per line, IPv6 in brackets or bare', () => {
  const result = parseInputs(
    rawInputs({ ...minimal, resolve: 'api.example.test:127.0.0.1\n\nv6.example.test:[::1]\n' }),
  );
  assert.ok(result.ok);
  assert.deepEqual(result.inputs.resolve, [
    { host: 'api.example.test', address: { family: 4, value: 0x7f000001 } },
    { host: 'v6.example.test', address: { family: 6, value: 1n } },
  ]);
});

test('resolve pins reach run as pins it reads back the same, IPv6 in brackets', () => {
  const result = parseInputs(
    rawInputs({ ...minimal, resolve: 'a.test:127.0.0.1\nb.test:::1\nc.test:[::ffff:10.0.0.1]' }),
  );
  assert.ok(result.ok);
  const argv = runArgv({
    node: 'node',
    cli: 'cli.js',
    asRoot: true,
    runId: 'pe-test',
    policy: 'policy.yaml',
    workdir: '/w',
    script: 'agent.sh',
    args: [],
    evidenceOutput: 'out',
    identity: 'agent',
    envFile: 'env',
    outcomeFile: 'outcome',
    signingKeyFile: undefined,
    publicKey: undefined,
    writable: [],
    pins: result.inputs.resolve,
    upstreamCa: undefined,
  });
  const given = argv.flatMap((arg, at) => (argv[at - 1] === '--resolve' ? [arg] : []));
  assert.deepEqual(given, ['a.test:127.0.0.1', 'b.test:[::1]', 'c.test:10.0.0.1']);
  assert.deepEqual(parseNamePins(given), result.inputs.resolve);
});

test('parseNamePin refuses a missing ip, an ip as host, and a name as ip', () => {
  assert.match(String(parseNamePin('api.example.test')), /is not host:ip/);
  assert.match(String(parseNamePin('127.0.0.1:127.0.0.2')), /is not a host name/);
  assert.match(String(parseNamePin('a.example:b.example')), /is not an IP address/);
  assert.match(
    String(parseNamePin('a.example:0x7f.1')),
    /"0x7f\.1" is read as the IPv4 address 127\.0\.0\.1 .*; write the address in dotted decimal/,
  );
});

test('resolve pins: one name pinned to two addresses is refused before anything starts', () => {
  const result = parseInputs(
    rawInputs({ ...minimal, resolve: 'api.example.test:127.0.0.1\napi.example.test:127.0.0.2\n' }),
  );
  assert.ok(!result.ok);
  assert.match(
    result.errors.join('\n'),
    /api\.example\.test:127\.0\.0\.1 and api\.example\.test:127\.0\.0\.2 pin api\.example\.test to two addresses/,
  );
});

test('writable-paths: one path per line, blank lines ignored', () => {
  const result = parseInputs(rawInputs({ ...minimal, 'writable-paths': 'out\n\n/tmp/cache\n' }));
  assert.ok(result.ok);
  assert.deepEqual(result.inputs['writable-paths'], ['out', '/tmp/cache']);
});
