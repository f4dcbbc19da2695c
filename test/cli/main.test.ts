import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { scratchDir } from '../scratch.js';
import { main } from '../../src/cli/main.js';
import { MAX_POLICY_BYTES } from '../../src/policy/index.js';

const REFERENCE = 'fixtures/policies/reference.yaml';
const TRIAGE = 'fixtures/policies/triage-agent.yaml';

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
    readFile: (path) => readFile(path),
  });
  return { code, stdout, stderr };
}

test('--help prints usage on stdout and exits 0', async () => {
  const { code, stdout, stderr } = await cli('--help');
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: pipelock-egress <command>/);
  assert.equal(stderr, '');
});

test('-h or --help where an option may stand prints usage and exits 0', async () => {
  for (const argv of [
    ['verify', '--help'],
    ['verify', '--receipt-chain', '/nonexistent', '-h'],
    ['policy', 'check', '--help'],
    ['cleanup', '--help'],
    ['view', '--help'],
  ]) {
    const { code, stdout } = await cli(...argv);
    assert.equal(code, 0, argv.join(' '));
    assert.match(stdout, /^Usage: pipelock-egress <command>/, argv.join(' '));
  }
});

test("an option's value, or an agent's argument after --, that reads -h or --help is that, not a request for usage", async () => {
  // verify exiting 0 here would read as a chain that verified.
  for (const argv of [
    ['verify', '--receipt-chain', '/nonexistent', '--session-id', '--help'],
    ['run', '--policy', '/nonexistent/policy.yaml', '--', 'agent.sh', '-h'],
  ]) {
    const { code, stdout } = await cli(...argv);
    assert.notEqual(code, 0, argv.join(' '));
    assert.doesNotMatch(stdout, /Usage:/, argv.join(' '));
  }
});

test('--version prints the package version', async () => {
  const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
  const { code, stdout } = await cli('--version');
  assert.equal(code, 0);
  assert.equal(stdout, `pipelock-egress ${version}\n`);
});

test('no command, an unknown command or an unknown flag: usage on stderr, exit 2', async () => {
  for (const argv of [
    [],
    ['frobnicate'],
    ['--frobnicate'],
    ['policy', 'check', '--strict', REFERENCE],
    ['policy', 'lint', REFERENCE],
  ]) {
    const { code, stdout, stderr } = await cli(...argv);
    assert.equal(code, 2, argv.join(' '));
    assert.equal(stdout, '', argv.join(' '));
    assert.match(stderr, /Usage: pipelock-egress/, argv.join(' '));
  }
});

test('policy check of a file named like an option says how to name it', async () => {
  const { code, stderr } = await cli('policy', 'check', '-p.yaml');
  assert.equal(code, 2);
  assert.match(
    stderr,
    /unknown option "-p\.yaml" \(a file whose name starts with "-" is written \.\/-p\.yaml\)/,
  );
});

test('policy check with a wrong number of arguments is a usage error', async () => {
  const { code, stderr } = await cli('policy', 'check');
  assert.equal(code, 2);
  assert.match(stderr, /policy check: wrong number of arguments/);
});

test('policy check of the reference policy: exit 0 and a summary of every rule', async () => {
  const { code, stdout, stderr } = await cli('policy', 'check', REFERENCE);
  assert.equal(code, 0);
  assert.equal(stderr, '');
  assert.match(stdout, /^policy OK: fixtures\/policies\/reference.yaml$/m);
  assert.match(stdout, /hash +[0-9a-f]{64}$/m);
  assert.match(stdout, /\[0\] api\.github\.com +ports 80,443 +methods GET,POST +scan$/m);
  assert.match(stdout, /\[1\] registry\.npmjs\.org +ports 80,443 +methods GET$/m);
  assert.match(stdout, /\[2\] docs\.example\.com/m);
  assert.match(stdout, /websocket +enabled at \/ws\?url=, frame scan on/);
  assert.ok(stdout.split('\n').length <= 24, 'the summary fits on one screen');
});

test('policy check of a broken policy: every error as file:line:col on stderr, exit 1', async () => {
  const { code, stdout, stderr } = await cli(
    'policy',
    'check',
    'fixtures/policies/cli-broken.yaml',
  );
  assert.equal(code, 1);
  assert.equal(stdout, '');
  const lines = stderr.trimEnd().split('\n');
  assert.deepEqual(lines, [
    'fixtures/policies/cli-broken.yaml:3:5: egress[0].destinaton: unknown key "destinaton"; did you mean "destination"?',
    'fixtures/policies/cli-broken.yaml:4:15: egress[0].methods[0]: got the string "get"; expected "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE" (did you mean "GET"?)',
    'fixtures/policies/cli-broken.yaml:5:15: default_deny: got the string "no"; expected true or false (unquoted; YAML 1.2 reads yes/no/on/off as strings)',
    '3 errors in fixtures/policies/cli-broken.yaml; nothing runs on an invalid policy',
  ]);
});

test('policy check quotes control characters from the file escaped: no forged line, no terminal codes', async () => {
  const file = join(scratchDir('cli-'), 'controls.yaml');
  writeFileSync(
    file,
    'version: "1.0"\negress:\n  - destination: "a\\n::error::forged\\u001b[31m"\n',
  );
  const { code, stderr } = await cli('policy', 'check', file);
  assert.equal(code, 1);
  const [first, ...rest] = stderr.trimEnd().split('\n');
  assert.equal(rest.length, 1, stderr);
  assert.ok(first?.includes(String.raw`"a\u000a::error::forged\u001b[31m"`), first);
});

test('policy check whose reader stops early (| head) exits with its own code, not a crash', async () => {
  const dir = scratchDir('cli-');
  const file = join(dir, 'many.yaml');
  const rules = Array.from({ length: 20_000 }, (_, i) => `  - destination: "h${i}.example.com"\n`);
  writeFileSync(file, `version: "1.0"\negress:\n${rules.join('')}`);
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    'src/cli/index.ts',
    'policy',
    'check',
    file,
  ]);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('policy check of a missing file: exit 2 with the reason', async () => {
  const { code, stderr } = await cli('policy', 'check', 'fixtures/policies/does-not-exist.yaml');
  assert.equal(code, 2);
  assert.match(
    stderr,
    /cannot read policy fixtures\/policies\/does-not-exist\.yaml: ENOENT.*; give the path of a readable policy YAML file\n$/,
  );
});

test('policy check of a FIFO or a device: exit 2 at once, "not a regular file", nothing read', async () => {
  const fifo = join(scratchDir('pe-policy-fifo-'), 'policy.yaml');
  execFileSync('mkfifo', [fifo]);
  for (const file of [fifo, '/dev/zero']) {
    const { code, stderr } = await cli('policy', 'check', file);
    assert.equal(code, 2, stderr);
    // One way out, said once.
    assert.equal(
      stderr,
      `pipelock-egress: cannot read policy ${file}: not a regular file; give the path of a readable policy YAML file\n`,
    );
  }
});

test('policy check of a file over the size limit reads no more than the limit and says so', async () => {
  const file = join(scratchDir('pe-policy-big-'), 'policy.yaml');
  writeFileSync(file, Buffer.alloc(3 * MAX_POLICY_BYTES, 0x20));
  const { code, stderr } = await cli('policy', 'check', file);
  assert.equal(code, 1, stderr);
  assert.match(stderr, new RegExp(`the file has more than ${MAX_POLICY_BYTES} bytes`));
});

test('policy explain: an allowed request prints allow and the rule, exit 0', async () => {
  const { code, stdout } = await cli(
    'policy',
    'explain',
    REFERENCE,
    'GET',
    'https://api.github.com/repos/acme/widgets',
  );
  assert.equal(code, 0);
  assert.equal(
    stdout,
    'allow\n  reason: allowed by egress[0] (api.github.com)\n  rule:   egress[0] api.github.com (line 3)\n  scan:   headers and body are scanned for secrets\n' +
      '  tls:    intercepted: the request is judged inside its CONNECT tunnel\n' +
      '  ssrf:   applies to the addresses api.github.com resolves to when the request is made (a loopback, private or metadata address passes only on a rule naming it)\n',
  );
});

test('policy explain: a refused method prints block, the layer and the reason, exit 1', async () => {
  const { code, stdout } = await cli(
    'policy',
    'explain',
    REFERENCE,
    'DELETE',
    'https://registry.npmjs.org/left-pad',
  );
  assert.equal(code, 1);
  assert.match(
    stdout,
    /^block\n {2}layer: {2}method\n {2}reason: method DELETE is not allowed by egress\[1\] \(registry\.npmjs\.org\); allowed: GET\n/,
  );
});

test('policy explain: an unlisted destination is blocked by default_deny', async () => {
  const { code, stdout } = await cli(
    'policy',
    'explain',
    REFERENCE,
    'GET',
    'https://pastebin.example/raw/1',
  );
  assert.equal(code, 1);
  assert.match(
    stdout,
    /layer: {2}destination\n {2}reason: no egress rule allows pastebin\.example/,
  );
});

test('policy explain: a path the proxy could not send as spelled is refused 400 (layer request), as the proxy does', async () => {
  for (const [target, reason] of [
    ['https://api.github.com/repos/x/../acme', /dot segment/],
    ['https://api.github.com/repos\\acme', /backslash/],
    ['https://api.github.com/repos/acme#top', /fragment/],
  ] as const) {
    const { code, stdout } = await cli('policy', 'explain', REFERENCE, 'GET', target);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^block\n {2}layer: {2}request\n {2}reason: /);
    assert.match(stdout, reason);
  }
});

test('policy explain: CONNECT host:port says whether TLS is intercepted', async () => {
  const intercepted = await cli('policy', 'explain', TRIAGE, 'CONNECT', 'api.github.com:443');
  assert.equal(intercepted.code, 0);
  assert.match(intercepted.stdout, /tls: +intercepted/);
  const tunnelled = await cli(
    'policy',
    'explain',
    'fixtures/policies/passthrough.yaml',
    'CONNECT',
    'pinned.example.com:443',
  );
  assert.equal(tunnelled.code, 0);
  assert.match(tunnelled.stdout, /tls: +tunnelled untouched/);
  const file = join(scratchDir('pe-explain-plain-'), 'policy.yaml');
  writeFileSync(file, 'version: "1.0"\negress:\n  - destination: "http://plain.test/api/"\n');
  const plain = await cli('policy', 'explain', file, 'CONNECT', 'plain.test:80');
  assert.equal(plain.code, 0, plain.stdout);
  assert.match(
    plain.stdout,
    /tls: +intercepted: only http:\/\/ URL prefixes admit it, so the plain HTTP it carries is judged request by request and every request over TLS is refused\n/,
  );
});

test('policy explain: a destination a bound secret may not reach is scanned and intercepted, unless passthrough', async () => {
  const explain = (target: string) =>
    cli('policy', 'explain', 'fixtures/policies/bound-secret.yaml', 'CONNECT', target);
  const allowed = await explain('api.github.com:443');
  assert.match(
    allowed.stdout,
    /scan: +the host name only \(the tunnel is not intercepted\)\n +tls: +tunnelled untouched/,
  );
  const kept = await explain('registry.npmjs.org:443');
  assert.match(kept.stdout, /scan: +headers and body are scanned for GH_TOKEN/);
  assert.match(kept.stdout, /tls: +intercepted to keep out GH_TOKEN/);
  const pinned = await explain('pinned.example.com:443');
  assert.match(
    pinned.stdout,
    /tls: +tunnelled untouched \(SNI checked, tls: passthrough\): GH_TOKEN, bound to other destinations, could reach it unseen inside TLS\n/,
  );
});

test('policy explain: an https:// URL the engine only tunnels is judged as its CONNECT; what is inside goes unseen', async () => {
  const file = join(scratchDir('pe-explain-https-'), 'policy.yaml');
  writeFileSync(
    file,
    'version: "1.0"\negress:\n  - destination: "api.test:8443"\n  - destination: "scanned.test"\n    scan: true\n',
  );
  // The engine never sees this query (it travels inside TLS): no DLP verdict on it.
  const unseen = await cli(
    'policy',
    'explain',
    file,
    'POST',
    'https://api.test:8443/x?token=abcdefghij',
  );
  assert.equal(unseen.code, 0, unseen.stdout);
  assert.match(unseen.stdout, /^allow\n/);
  assert.match(
    unseen.stdout,
    /tls: +tunnelled untouched \(SNI checked\)\n +inside: the request goes inside this tunnel unseen: its method, path, query, headers and body are not judged/,
  );
  const inside = await cli(
    'policy',
    'explain',
    file,
    'POST',
    'https://scanned.test/x?token=abcdefghij',
  );
  assert.equal(inside.code, 1);
  assert.match(inside.stdout, /layer: +dlp/);
  // Blocked at the CONNECT: its reason, whatever the path.
  const unlisted = await cli('policy', 'explain', file, 'GET', 'https://other.test/x');
  assert.match(unlisted.stdout, /reason: no egress rule allows other\.test/);
});

test('policy explain takes WS as the proxy records a handshake, judged as GET; frame_scan is said', async () => {
  const file = join(scratchDir('pe-explain-ws-'), 'policy.yaml');
  writeFileSync(
    file,
    'version: "1.0"\negress:\n  - destination: "ws.test"\n    methods: ["GET"]\nwebsocket:\n  enabled: true\n',
  );
  const handshake = await cli('policy', 'explain', file, 'WS', 'wss://ws.test/socket');
  assert.equal(handshake.code, 0, handshake.stdout);
  assert.match(
    handshake.stdout,
    /scan: +the handshake headers and every message the client sends are scanned for secrets \(websocket\.frame_scan\)/,
  );
  assert.doesNotMatch(handshake.stdout, /tls:/);
});

test('policy explain applies the WebSocket switch and the SSRF guard as the proxy does', async () => {
  const dir = scratchDir('pe-explain-');
  const policyFile = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const noWebSocket = policyFile(
    'ws.yaml',
    'version: "1.0"\negress:\n  - destination: "127.0.0.1:21003"\nwebsocket:\n  enabled: false\n',
  );
  for (const target of ['ws://127.0.0.1:21003/x', 'wss://127.0.0.1:21003/x']) {
    const { code, stdout } = await cli('policy', 'explain', noWebSocket, 'GET', target);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /^block\n +layer: +websocket\n +reason: .*websocket\.enabled: false/);
  }
  // A secret in the URL is named as what blocks it, as in the proxy (in audit mode too).
  const leaking = await cli(
    'policy',
    'explain',
    noWebSocket,
    'GET',
    'ws://127.0.0.1:21003/x?token=abcdefghij',
  );
  assert.equal(leaking.code, 1, leaking.stdout);
  assert.match(leaking.stdout, /^block\n +layer: +dlp\n/);
  // Audit mode lets a WebSocket the policy has off pass, warned.
  const audited = policyFile('ws-audit.yaml', `mode: audit\n${readFileSync(noWebSocket, 'utf8')}`);
  const warned = await cli('policy', 'explain', audited, 'WS', 'ws://127.0.0.1:21003/x');
  assert.equal(warned.code, 0, warned.stdout);
  assert.match(warned.stdout, /^warn\n +layer: +websocket\n +reason: .*websocket\.enabled: false/);
  const rules = 'egress:\n  - destination: "127.0.0.0/8"\n    ports: [21002]\n';
  for (const mode of ['enforce', 'audit']) {
    const open = policyFile(
      `open-${mode}.yaml`,
      `version: "1.0"\nmode: ${mode}\ndefault_deny: false\n${rules}`,
    );
    const loopback = await cli('policy', 'explain', open, 'GET', 'http://[::1]:21004/x');
    assert.equal(loopback.code, 1, loopback.stdout);
    assert.match(
      loopback.stdout,
      /^block\n +layer: +ssrf\n +reason: SSRF blocked: \[::1\] resolves to loopback/,
    );
    const named = await cli('policy', 'explain', open, 'GET', 'http://127.0.0.1:21002/x');
    assert.equal(named.code, 0, named.stdout);
    assert.match(
      named.stdout,
      /ssrf: +passes: 127\.0\.0\.1 is a loopback address, and a rule naming it/,
    );
    const name = await cli('policy', 'explain', open, 'GET', 'http://example.test/x');
    assert.match(
      name.stdout,
      /ssrf: +applies to the addresses example\.test resolves to when the request is made/,
    );
  }
});

test('policy explain scans the URL as the proxy does: a credential or a bound secret in it blocks (layer dlp), never printed', async () => {
  const token = `ghp_${'a1B2c3D4e5'.repeat(3)}abcdef`;
  const inQuery = await cli(
    'policy',
    'explain',
    TRIAGE,
    'GET',
    `https://api.github.com/x?token=${token}`,
  );
  assert.equal(inQuery.code, 1, inQuery.stdout);
  assert.match(
    inQuery.stdout,
    /^block\n +layer: +dlp\n +reason: DLP match: github-token in the URL\n$/,
  );
  const bound = 'bound-value-7Qz9-never-printed';
  process.env['GH_TOKEN'] = bound;
  try {
    const elsewhere = await cli(
      'policy',
      'explain',
      'fixtures/policies/bound-secret.yaml',
      'GET',
      `https://registry.npmjs.org/${bound}`,
    );
    assert.equal(elsewhere.code, 1, elsewhere.stdout);
    assert.match(
      elsewhere.stdout,
      /^block\n +layer: +dlp\n +reason: DLP match: secret:GH_TOKEN in the URL/,
    );
    const allowed = await cli(
      'policy',
      'explain',
      'fixtures/policies/bound-secret.yaml',
      'GET',
      `https://api.github.com/${bound}`,
    );
    assert.equal(allowed.code, 0, allowed.stdout);
    for (const result of [inQuery, elsewhere, allowed]) {
      assert.ok(!`${result.stdout}${result.stderr}`.includes(token));
      assert.ok(!`${result.stdout}${result.stderr}`.includes(bound));
    }
  } finally {
    delete process.env['GH_TOKEN'];
  }
});

test('policy explain reports the bound secrets the proxy would refuse or warn about, as the proxy does: exit 1, no decision', async () => {
  const dir = scratchDir('explain-secrets-');
  const policy = join(dir, 'policy.yaml');
  writeFileSync(
    policy,
    'version: "1.0"\negress:\n  - destination: "a.test"\nsecrets:\n  - env: PE_EXPLAIN_UNSET\n    allow: ["a.test"]\n  - env: PE_EXPLAIN_SHORT\n    allow: ["a.test"]\n',
  );
  process.env['PE_EXPLAIN_SHORT'] = '1234567';
  delete process.env['PE_EXPLAIN_UNSET'];
  try {
    const explained = await cli('policy', 'explain', policy, 'GET', 'http://a.test/');
    const proxy = await cli(
      'proxy',
      ...['--policy', policy, '--listen', '127.0.0.1:0', '--evidence-dir', join(dir, 'ev')],
    );
    assert.equal(proxy.code, 1, proxy.stderr);
    assert.equal(explained.code, proxy.code, explained.stderr);
    assert.equal(explained.stdout, '');
    assert.equal(
      explained.stderr,
      `${proxy.stderr.replaceAll('pipelock-egress proxy: ', 'pipelock-egress policy explain: ')}pipelock-egress policy explain: the proxy would not start with this environment: no request passes\n`,
    );
    assert.match(explained.stderr, /warning: .*secrets\[0\] \(PE_EXPLAIN_UNSET\): .* has no value/);
    assert.match(
      explained.stderr,
      /secrets\[1\] \(PE_EXPLAIN_SHORT\): the value of PE_EXPLAIN_SHORT is 7 characters long; a bound secret needs at least 8/,
    );
    assert.doesNotMatch(explained.stderr, /1234567/);
  } finally {
    delete process.env['PE_EXPLAIN_SHORT'];
  }
});

test('policy explain on an invalid policy reports its errors and exits 2 (no decision)', async () => {
  const { code, stdout, stderr } = await cli(
    'policy',
    'explain',
    'fixtures/policies/cli-broken.yaml',
    'GET',
    'https://a.example/',
  );
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /3 errors in/);
});

test('policy explain rejects a method that is not a token', async () => {
  const { code, stderr } = await cli(
    'policy',
    'explain',
    REFERENCE,
    'GET /',
    'https://api.github.com/',
  );
  assert.equal(code, 2);
  assert.match(stderr, /"GET \/" is not an HTTP method/);
  // Methods are case-sensitive: the proxy would refuse "get", so explain does not judge it.
  const lower = await cli('policy', 'explain', REFERENCE, 'get', 'https://api.github.com/');
  assert.equal(lower.code, 2);
  assert.match(
    lower.stderr,
    /methods are case-sensitive and sent in upper case; did you mean "GET"\?/,
  );
});

test('run --identity with a control character or over 128 characters is a usage error (exit 2)', async () => {
  for (const identity of ['agent\nforged line', 'a'.repeat(129)]) {
    const { code, stderr } = await cli(
      'run',
      '--policy',
      'fixtures/policies/reference.yaml',
      '--identity',
      identity,
      '--',
      'agent.sh',
    );
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /run: --identity: expected at most 128 characters without control characters/,
    );
  }
});
