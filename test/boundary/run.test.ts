// `pipelock-egress run` end to end, for real: users, namespaces, firewall, setpriv, the engine
// as its own process, evidence verified at the end, nothing left behind.
import { after, before, beforeEach, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { recoverRun } from '../../src/boundary/recover.js';
import { validatePacket } from '../packet/schema.js';
import { join } from 'node:path';
import { startOrigin, type Origin } from '../engine/helpers.js';
import {
  CLI,
  assertNothingLeft,
  blocked,
  evidenceOf,
  holdUser,
  requireBuiltCli,
  runAgent,
  snapshot,
  type AgentRunOptions,
  type HeldUser,
  type MachineSnapshot,
} from './harness.js';
import { scratchDir } from '../scratch.js';

let origin: Origin;
let machine: MachineSnapshot;

before(async () => {
  requireBuiltCli();
  origin = await startOrigin((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`origin saw ${req.method} ${req.url}`);
  });
});
after(() => origin.close());
beforeEach(() => (machine = snapshot()));
afterEach(() => assertNothingLeft(machine));

const policyFor = (port: number): string => `version: "1.0"
egress:
  - destination: "127.0.0.1:${port}"
    methods: ["GET"]
    paths: ["/public/"]
default_deny: true
`;

// NO_PROXY covers loopback (so the agent can reach the proxy itself); requests to the host's
// loopback origin must be sent through the proxy explicitly.
const viaProxy = 'curl -sS --noproxy "" --max-time 10';

test('allowed requests pass, forbidden ones get 403 with a block receipt; the chain is sealed and verifies', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `set -u
${viaProxy} http://127.0.0.1:${origin.port}/public/a.txt; echo
${viaProxy} -X POST -d x http://127.0.0.1:${origin.port}/public/a.txt; echo
${viaProxy} http://127.0.0.1:${origin.port}/private/b.txt; echo
`,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^origin saw GET \/public\/a\.txt$/m);
  assert.match(run.stdout, /^blocked: method POST is not allowed/m);
  assert.match(run.stdout, /^blocked: path \/private\/b\.txt is outside/m);
  assert.match(run.stderr, /[0-9]+ probes passed inside the boundary/);
  const evidence = evidenceOf(run);
  assert.deepEqual(
    evidence.decisions.map((r) => `${r.action_record.verdict} ${r.action_record.method}`),
    ['allow GET', 'block POST', 'block GET'],
  );
  assert.deepEqual(blocked(evidence.decisions), [
    { target: `http://127.0.0.1:${origin.port}/public/a.txt`, layer: 'method' },
    { target: `http://127.0.0.1:${origin.port}/private/b.txt`, layer: 'path' },
  ]);
  const report = JSON.parse(
    readFileSync(join(run.out, 'verification-report.json'), 'utf8'),
  ) as Record<string, unknown>;
  assert.equal(report['verdict'], 'self_consistent_only');
  assert.equal(report['sealed'], true);
  // The Audit Packet around it.
  for (const file of [
    'receipts.json',
    'evidence.jsonl',
    'policy.yaml',
    'policy-hash.txt',
    'signer-public-key.pem',
    'packet.json',
    'summary.md',
  ]) {
    assert.ok(existsSync(join(run.out, file)), file);
  }
  const packet = JSON.parse(readFileSync(join(run.out, 'packet.json'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  assert.ok(validatePacket(packet), JSON.stringify(validatePacket.errors));
  assert.equal(packet['summary']?.['receipt_count'], evidence.receipts.length);
  assert.deepEqual(packet['summary']?.['layers'], { method: 1, path: 1 });
  assert.deepEqual(packet['summary']?.['domains_touched'], ['127.0.0.1']);
  assert.equal(packet['verifier']?.['verdict'], 'self_consistent_only');
  assert.equal(packet['posture']?.['agent_user'], 'pipelock-agent');
  assert.match(
    readFileSync(join(run.out, 'summary.md'), 'utf8'),
    /- seq 2: POST `http:\/\/127\.0\.0\.1:[0-9]+\/public\/a\.txt`: method: `method POST is not allowed/,
  );
  const receiptsJson = JSON.parse(
    readFileSync(join(run.out, 'receipts.json'), 'utf8'),
  ) as unknown[];
  assert.equal(receiptsJson.length, evidence.receipts.length);
  assert.equal(
    readFileSync(join(run.out, 'policy-hash.txt'), 'utf8').trim(),
    evidence.receipts[0]?.action_record.policy_hash,
  );
  // The evidence verifies again with the CLI a reviewer would use.
  execFileSync(process.execPath, [
    CLI,
    'verify',
    '--receipt-chain',
    join(run.out, 'evidence'),
    '--public-key',
    join(run.out, 'signer-public-key.pem'),
    '--require-sealed',
    '--whole-recorder',
  ]);
});

test("the run's exit code is the agent's, after the evidence is verified", async () => {
  const run = await runAgent({ policy: policyFor(origin.port), script: 'echo bye; exit 7\n' });
  assert.equal(run.code, 7, run.stderr);
  assert.match(run.stderr, /agent exited 7/);
  assert.equal(evidenceOf(run).report.sealed, true);
});

test('a caller that stops reading (`run … | head`) neither stalls the agent nor ends the run early', async () => {
  // 2 MB on each stream: far more than a pipe holds, so an output nobody drains would block it.
  const flood = (stream: string): string => `head -c 2000000 /dev/zero | tr '\\0' x ${stream}\n`;
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `${flood('')}${flood('>&2')}exit 3\n`,
    readersLeaveEarly: true,
  });
  assert.equal(run.code, 3, run.stderr);
  assert.equal(evidenceOf(run).report.sealed, true);
});

test('a script that ends itself with a signal ends as it would outside the boundary (128+N)', async () => {
  // PID 1 of a namespace ignores signals it has no handler for: the script must not be it.
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'echo "pid $$ parent $PPID"\nkill -TERM $$\necho still alive\n',
  });
  assert.equal(run.code, 143, run.stderr);
  assert.match(run.stdout, /^pid (?!1 )\d+ parent 1$/m);
  assert.doesNotMatch(run.stdout, /still alive/);
  assert.equal(evidenceOf(run).report.sealed, true);
});

test("with a pinned key the verdict is valid, and the key file stays out of the agent's reach", async () => {
  const keys = scratchDir('pe-keys-');
  execFileSync(process.execPath, [CLI, 'keygen', '--out', keys], { stdio: 'ignore' });
  const key = join(keys, 'signing-key.pem');
  execFileSync('chmod', ['0755', keys]);
  execFileSync('chmod', ['0644', key]); // readable by anyone on the host: only the mask protects it
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `if [ -n "$(cat ${key} 2>/dev/null)" ]; then echo KEY-READ; else echo key-hidden; fi\n`,
    options: ['--signing-key', key, '--public-key', join(keys, 'public-key.pem')],
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^key-hidden$/m);
  const report = JSON.parse(
    readFileSync(join(run.out, 'verification-report.json'), 'utf8'),
  ) as Record<string, unknown>;
  assert.equal(report['verdict'], 'valid');
  assert.equal(report['trusted'], true);
});

test('the agent environment: proxies, CA variables, its own HOME and user; runner internals withheld', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'env | sort\n',
    env: {
      ACTIONS_RUNTIME_TOKEN: 'runtime-token',
      INPUT_SIGNING_KEY: 'input-key',
      GITHUB_OUTPUT: '/tmp/out',
      GITHUB_REPOSITORY: 'acme/widgets',
      HTTP_PROXY: 'http://10.0.0.1:3128',
    },
  });
  assert.equal(run.code, 0, run.stderr);
  const env = Object.fromEntries(
    run.stdout
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const proxy = env['HTTP_PROXY'] ?? '';
  assert.match(proxy, /^http:\/\/127\.0\.0\.1:[0-9]+$/);
  for (const name of [
    'HTTPS_PROXY',
    'ALL_PROXY',
    'http_proxy',
    'https_proxy',
    'all_proxy',
    'PIPELOCK_PROXY_URL',
  ]) {
    assert.equal(env[name], proxy, name);
  }
  assert.equal(env['PIPELOCK_WS_URL'], `${proxy.replace(/^http:/, 'ws:')}/ws?url=`);
  assert.equal(env['NO_PROXY'], 'localhost,127.0.0.1,::1');
  assert.equal(env['NODE_USE_ENV_PROXY'], '1');
  assert.equal(env['USER'], 'pipelock-agent');
  assert.match(env['HOME'] ?? '', /^\/run\/pipelock-egress\/pe-[0-9a-f]{10}\/home$/);
  for (const name of [
    'SSL_CERT_FILE',
    'CURL_CA_BUNDLE',
    'NODE_EXTRA_CA_CERTS',
    'REQUESTS_CA_BUNDLE',
    'GIT_SSL_CAINFO',
    'NPM_CONFIG_CAFILE',
    'PIP_CERT',
    'AWS_CA_BUNDLE',
  ]) {
    assert.match(env[name] ?? '', /\/agent\/ca-bundle\.pem$/, name);
  }
  assert.equal(env['GITHUB_REPOSITORY'], 'acme/widgets');
  for (const name of ['ACTIONS_RUNTIME_TOKEN', 'INPUT_SIGNING_KEY', 'GITHUB_OUTPUT'])
    assert.equal(env[name], undefined, name);
});

test('a large body is scanned by the engine as run starts it (its scanning thread): a token in it is refused', async () => {
  const token = `ghp_${'Q'.repeat(36)}`;
  const run = await runAgent({
    policy: `version: "1.0"
egress:
  - destination: "127.0.0.1:${origin.port}"
    methods: ["POST"]
    scan: true
`,
    // Past the size the engine scans in place: a thread of the engine reads these.
    script: `set -eu
body=$(mktemp)
head -c 300000 /dev/zero | tr '\\0' 'x' > "$body"
${viaProxy} --data-binary @"$body" http://127.0.0.1:${origin.port}/clean; echo
printf ' ${token} ' >> "$body"
${viaProxy} --data-binary @"$body" http://127.0.0.1:${origin.port}/leak; echo
`,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^origin saw POST \/clean$/m);
  assert.match(run.stdout, /^blocked: DLP match: github-token in the body$/m);
  assert.doesNotMatch(run.stdout, /origin saw POST \/leak/);
  assert.deepEqual(blocked(evidenceOf(run).decisions), [
    { target: `http://127.0.0.1:${origin.port}/leak`, layer: 'dlp' },
  ]);
});

test("no secret is on any command line while the agent runs (bound secrets, the signing key), nor in the engine's environment; the engine holds the binding all the same", async () => {
  const secret = `ghp_${'Q'.repeat(36)}`;
  let seen: string[] = [];
  let engineEnvironment = '';
  const run = await runAgent({
    policy: `${policyFor(origin.port)}secrets:\n  - env: AGENT_TOKEN\n    allow: ["allowed.example.test"]\n`,
    script: `sleep 2\n${viaProxy} -H "X-Note: $AGENT_TOKEN" http://127.0.0.1:${origin.port}/public/leak; echo\n`,
    env: { AGENT_TOKEN: secret },
    onStderr: [
      {
        text: 'starting agent.sh',
        action: () => {
          seen = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n');
          const engine = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
            .split('\n')
            .find((line) => line.includes(' proxy --listen-inherited '));
          const pid = /^\s*(\d+) /.exec(engine ?? '')?.[1] ?? 'none';
          engineEnvironment = readFileSync(`/proc/${pid}/environ`, 'latin1');
        },
      },
    ],
  });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(
    seen.some((line) => line.includes('agent.sh')),
    'ps ran while the agent was running',
  );
  assert.deepEqual(
    seen.filter((line) => line.includes(secret) || line.includes('PRIVATE KEY')),
    [],
  );
  assert.match(run.stdout, /^blocked: .*secret:AGENT_TOKEN/m);
  assert.doesNotMatch(run.stdout, /origin saw/);
  assert.deepEqual(blocked(evidenceOf(run).decisions), [
    { target: `http://127.0.0.1:${origin.port}/public/leak`, layer: 'dlp' },
  ]);
  // The engine has the bound secrets over its IPC channel: in its environment, a bound name
  // its own runtime reads (NODE_OPTIONS, LD_PRELOAD) would configure it.
  assert.deepEqual(engineEnvironment.split('\0').filter(Boolean).sort(), [
    'HOME=/nonexistent',
    'LANG=C.UTF-8',
    // Node's own, for the IPC channel.
    'NODE_CHANNEL_FD=3',
    'NODE_CHANNEL_SERIALIZATION_MODE=json',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
  ]);
});

test('a --writable path that does not exist stops the run before anything is created', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'echo should-not-run\n',
    options: ['--writable', 'results'],
  });
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stdout, /should-not-run/);
  assert.match(run.stderr, /--writable results does not exist/);
  assert.match(run.stderr, /nothing was started or created/);
});

test('an --upstream-ca holding no certificate stops the run before anything is created', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'echo should-not-run\n',
    files: { 'ca.pem': 'not a certificate\n' },
    options: ['--upstream-ca', 'ca.pem'],
  });
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stdout, /should-not-run/);
  assert.match(run.stderr, /--upstream-ca ca\.pem holds no PEM certificate/);
  assert.match(run.stderr, /nothing was started or created/);
});

test('a bound secret too short to tell from ordinary text stops the run before anything is created', async () => {
  const run = await runAgent({
    policy: `${policyFor(origin.port)}secrets:\n  - env: PE_RUN_SHORT\n    allow: ["127.0.0.1"]\n  - env: PE_RUN_UNSET\n    allow: ["127.0.0.1"]\n`,
    script: 'echo should-not-run\n',
    env: { PE_RUN_SHORT: 'abc' },
  });
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stdout, /should-not-run/);
  assert.match(
    run.stderr,
    /secrets\[0\] \(PE_RUN_SHORT\): the value of PE_RUN_SHORT is 3 characters long/,
  );
  assert.match(run.stderr, /nothing was started or created/);
});

test('an --agent-env-file that cannot be read stops the run before anything is created, naming it', async () => {
  // Node 20 takes an `--env-file` anywhere in its arguments for its own and exits 9 when the
  // file is missing, before run can say anything: the option has a name Node does not read.
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'echo should-not-run\n',
    options: ['--agent-env-file', '/nonexistent/agent-env.json'],
  });
  assert.equal(run.code, 1, run.stderr);
  assert.match(run.stderr, /--agent-env-file \/nonexistent\/agent-env\.json: ENOENT/);
  assert.match(run.stderr, /nothing was started or created/);
});

test("--writable: the agent writes there and only there; afterwards ACLs are gone and its files are the owner's", async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `touch here 2>/dev/null && echo WROTE-WORKDIR || echo workdir-read-only
echo data > results/out.txt && echo wrote-results
mkdir -p results/sub && echo deep > results/sub/x.txt && echo wrote-deep
mkdir -m 2777 results/open && touch results/open/f && chmod 6777 results/open/f && echo opened
`,
    options: ['--writable', 'results'],
    dirs: ['results'],
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^workdir-read-only$/m);
  assert.match(run.stdout, /^wrote-results$/m);
  assert.match(run.stdout, /^wrote-deep$/m);
  for (const path of ['results', 'results/out.txt', 'results/sub', 'results/sub/x.txt']) {
    const full = join(run.workdir, path);
    const acls = execFileSync('getfacl', ['-P', '--skip-base', '--absolute-names', full], {
      encoding: 'utf8',
    });
    assert.equal(acls.trim(), '', `${path} keeps ACLs`);
    assert.equal(statSync(full).uid, 0, `${path} belongs to the workdir's owner`);
  }
  // Handed to the owner, what the agent left open to everyone is closed to group and others.
  assert.match(run.stdout, /^opened$/m);
  const mode = (path: string) => (statSync(join(run.workdir, path)).mode & 0o7777).toString(8);
  assert.deepEqual([mode('results/open'), mode('results/open/f')], ['755', '755']);
});

test('an agent nesting directories in its HOME deeper than a path can name is still torn down, its packet written', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'cd "$HOME" && for _ in $(seq 2100); do mkdir d && cd d || exit 1; done\necho nested\n',
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^nested$/m);
  assert.match(run.stderr, /verdict self_consistent_only/);
});

test('a teardown step that fails still leaves the packet, verified, and fails the run; cleanup removes the rest', async () => {
  let mounted = '';
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `${viaProxy} http://127.0.0.1:${origin.port}/public/a; echo; sleep 2\n`,
    onStderr: [
      {
        text: 'starting agent.sh',
        // Another file system inside the run directory: rm --one-file-system will not remove it.
        action: () => {
          const [dir] = readdirSync('/run/pipelock-egress').filter((name) =>
            name.startsWith('pe-'),
          );
          mounted = join('/run/pipelock-egress', dir ?? 'missing', 'stuck');
          mkdirSync(mounted);
          execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mounted]);
        },
      },
    ],
  });
  const runId = /run (pe-[0-9a-f]{10}): setting up/.exec(run.stderr)?.[1] ?? '';
  try {
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /boundary failed: teardown of pe-[0-9a-f]{10} failed: removing the run directory: .*rm -rf --one-file-system/,
    );
    assert.match(run.stderr, /Audit Packet in /);
    const verified = spawnSync(process.execPath, [
      CLI,
      'verify',
      '--packet',
      run.out,
      '--allow-unpinned',
    ]);
    assert.equal(verified.status, 0, verified.stdout.toString());
    assert.deepEqual(
      evidenceOf(run).decisions.map((r) => r.action_record.target),
      [`http://127.0.0.1:${origin.port}/public/a`],
    );
  } finally {
    if (mounted !== '') execFileSync('umount', [mounted]);
  }
  assert.ok(
    existsSync(`/run/pipelock-egress/${runId}/state.json`),
    'the failed teardown left its state',
  );
  assert.deepEqual(await recoverRun(runId), []);
  assert.equal(existsSync(`/run/pipelock-egress/${runId}`), false);
});

test('a teardown that cannot remove the agent user keeps what is left in its state: cleanup says so, then finishes it', async () => {
  let held: HeldUser | undefined;
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'sleep 3\n',
    onStderr: [
      {
        text: 'starting agent.sh',
        action: () => {
          held = holdUser('pipelock-agent');
        },
      },
    ],
  });
  const runId = /run (pe-[0-9a-f]{10}): setting up/.exec(run.stderr)?.[1] ?? '';
  const root = `/run/pipelock-egress/${runId}`;
  try {
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      run.stderr,
      /boundary failed: teardown of pe-[0-9a-f]{10} failed: removing user pipelock-agent: /,
    );
    assert.match(
      run.stderr,
      /what is left is recorded in \/run\/pipelock-egress\/pe-[0-9a-f]{10}\/state\.json/,
    );
    assert.deepEqual(readdirSync(root), ['state.json'], 'the signing key and HOME are gone');
    const stillHeld = await recoverRun(runId);
    assert.equal(stillHeld.length, 2, stillHeld.join('\n'));
    assert.match(stillHeld[0] ?? '', /^removing user pipelock-agent: /);
    assert.match(
      stillHeld[1] ?? '',
      /pipelock-egress cleanup pe-[0-9a-f]{10}` finishes the teardown$/,
    );
  } finally {
    await held?.release();
  }
  assert.deepEqual(await recoverRun(runId), []);
  assert.equal(existsSync(root), false);
});

test("--writable paths in a private directory (a file and a directory in /var/tmp) are bound into the agent's own", async () => {
  // Only a working directory above /var/tmp makes them more than part of a kept working
  // directory: /var is one.
  const file = `/var/tmp/pe-writable-${process.pid}.txt`;
  const dir = `/var/tmp/pe-writable-${process.pid}`;
  const other = `/var/tmp/pe-not-writable-${process.pid}`;
  writeFileSync(file, 'host\n');
  mkdirSync(dir);
  try {
    const run = await runAgent({
      policy: policyFor(origin.port),
      script: `echo agent >> ${file} && echo wrote-file
echo agent > ${dir}/made && echo wrote-dir
echo agent > ${other}
`,
      workdir: '/var',
      options: [
        '--writable',
        file,
        '--writable',
        dir,
        '--evidence-output',
        join(scratchDir('pe-out-'), 'out'),
      ],
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^wrote-file$/m);
    assert.match(run.stdout, /^wrote-dir$/m);
    assert.equal(readFileSync(file, 'utf8'), 'host\nagent\n');
    assert.equal(readFileSync(join(dir, 'made'), 'utf8'), 'agent\n');
    assert.ok(!existsSync(other), 'what the agent wrote elsewhere in /var/tmp stayed in its own');
  } finally {
    for (const path of [file, dir, other, '/var/agent.sh', '/var/policy.yaml'])
      rmSync(path, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- lifecycle

test('a script that never exits: SIGTERM kills its namespace, seals the evidence and tears down', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `${viaProxy} http://127.0.0.1:${origin.port}/public/before-cancel; echo; sleep 600\n`,
    onStderr: [
      {
        text: 'starting agent.sh',
        action: (pid) => setTimeout(() => process.kill(pid, 'SIGTERM'), 1_000),
      },
    ],
  });
  assert.equal(run.code, 143, run.stderr);
  assert.match(run.stderr, /SIGTERM: stopping the agent, sealing the evidence, tearing down/);
  const evidence = evidenceOf(run);
  assert.deepEqual(
    evidence.decisions.map((r) => r.action_record.target),
    [`http://127.0.0.1:${origin.port}/public/before-cancel`],
  );
});

test('a second run while one is going is refused before it creates anything: their agents would share a user', async () => {
  const workdir = scratchDir('pe-boundary-');
  let second: ReturnType<typeof spawnSync> | undefined;
  let netnsDuring: string[] = [];
  const first = await runAgent({
    policy: policyFor(origin.port),
    workdir,
    // Waits until the test has tried the second run (its own /tmp is private: the workdir).
    script: 'while [ ! -e go ]; do sleep 0.1; done; echo first-done\n',
    onStderr: [
      {
        text: 'starting agent.sh',
        action: () => {
          const other = scratchDir('pe-boundary-');
          chmodSync(other, 0o755);
          writeFileSync(join(other, 'policy.yaml'), policyFor(origin.port));
          writeFileSync(join(other, 'agent.sh'), 'echo second-ran\n');
          netnsDuring = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
            .split('\n')
            .filter((line) => line.startsWith('pe-'));
          second = spawnSync(
            process.execPath,
            [
              CLI,
              'run',
              '--policy',
              join(other, 'policy.yaml'),
              '--workdir',
              other,
              '--evidence-output',
              join(other, 'out'),
              '--',
              'agent.sh',
            ],
            { encoding: 'utf8', timeout: 60_000 },
          );
          // Nothing of the second run is on the machine: the first run's namespace only.
          assert.deepEqual(
            execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
              .split('\n')
              .filter((line) => line.startsWith('pe-')),
            netnsDuring,
          );
          rmSync(other, { recursive: true, force: true });
          writeFileSync(join(workdir, 'go'), '');
        },
      },
    ],
  });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^first-done$/m);
  assert.equal(second?.status, 1, String(second?.stderr));
  assert.doesNotMatch(String(second?.stdout), /second-ran/);
  assert.match(
    String(second?.stderr),
    /another run \(pe-[0-9a-f]{10}\) is going on this machine, and runs share the agent's user: one at a time; this run started nothing/,
  );
});

test('background processes the script leaves behind die with it', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    script:
      'sleep 600 &\n( sleep 600 & )\nsetsid sleep 600 &\nnohup sleep 600 >/dev/null 2>&1 &\necho left-four\n',
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^left-four$/m);
});

test('a fork bomb is bounded by the process limit, and teardown is still clean', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    // Only builtins after the bomb starts: the count and the wait need no fork.
    script: `while read -r line; do [[ $line == "Max processes"* ]] && echo "$line"; done < /proc/self/limits
bomb() { bomb | bomb & }
( bomb ) 2>/dev/null &
most=0
while (( SECONDS < 4 )); do
  shopt -s nullglob; procs=(/proc/[0-9]*); (( \${#procs[@]} > most )) && most=\${#procs[@]}
done
echo "most processes: $most"
`,
    options: ['--max-processes', '64'],
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^Max processes\s+64\s+64\s+processes\s*$/m);
  // A /proc listing is not atomic: processes that exit and others that start while it is read
  // can all be counted, so some over the limit may show (73 was seen); thousands would without it.
  const most = Number(/most processes: ([0-9]+)/.exec(run.stdout)?.[1]);
  assert.ok(
    most > 16 && most <= 64 + 32,
    `the bomb ran and stayed bounded: at most ${most} processes`,
  );
});

// ---------------------------------------------------------------- stops before anything is created

test('a bad policy stops the run with file:line:col errors, before anything is created', async () => {
  const run = await runAgent({
    policy: 'version: "1.0"\negress:\n  - destinaton: "api.github.com"\n',
    script: 'echo should-not-run\n',
  });
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stdout, /should-not-run/);
  assert.match(run.stderr, /policy\.yaml:3:5: .*destinaton/);
  assert.match(run.stderr, /nothing was started or created/);
});

for (const [name, scriptArg, links, expected] of [
  ['a missing script', 'missing.sh', {}, /script missing\.sh does not exist/],
  [
    'a script outside the working directory (path traversal)',
    '../../../../etc/passwd',
    {},
    /script \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd is outside the working directory/,
  ],
  [
    'a symlink out of the working directory',
    'escape.sh',
    { 'escape.sh': '/etc/passwd' },
    /script escape\.sh is outside the working directory .*\(it resolves to \/etc\/passwd\)/,
  ],
] as const) {
  test(`${name} stops the run before anything is created`, async () => {
    const run = await runAgent({
      policy: policyFor(origin.port),
      script: 'echo should-not-run\n',
      scriptArg,
      links,
    });
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stdout, /should-not-run/);
    assert.match(run.stderr, expected);
    assert.match(run.stderr, /nothing was started or created/);
  });
}

test('a working directory under /run (the agent gets an empty one) stops the run before anything is created', async () => {
  const workdir = `/run/pe-workdir-${process.pid}`;
  mkdirSync(workdir);
  try {
    const run = await runAgent({
      policy: policyFor(origin.port),
      script: 'echo should-not-run\n',
      workdir,
    });
    assert.equal(run.code, 1, run.stderr);
    assert.doesNotMatch(run.stdout, /should-not-run/);
    assert.match(
      run.stderr,
      /working directory \/run\/pe-workdir-[0-9]+ is under \/run, of which the agent gets an empty copy/,
    );
    assert.match(run.stderr, /nothing was started or created/);
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
});

test('a private directory itself as the working directory (/var/tmp) stops the run before anything is created', () => {
  const policy = join(scratchDir('pe-policy-'), 'policy.yaml');
  writeFileSync(policy, policyFor(origin.port));
  const run = spawnSync(
    process.execPath,
    [CLI, 'run', '--policy', policy, '--workdir', '/var/tmp', '--', 'agent.sh'],
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 1, run.stderr);
  assert.match(
    run.stderr,
    /working directory \/var\/tmp: the agent gets an empty \/var\/tmp of its own, so it cannot be given the host's/,
  );
  assert.match(run.stderr, /nothing was started or created/);
});

test('a --public-key that is not the signing key stops the run before anything is created', async () => {
  const keys = [scratchDir('pe-k1-'), scratchDir('pe-k2-')];
  for (const dir of keys)
    execFileSync(process.execPath, [CLI, 'keygen', '--out', dir], { stdio: 'ignore' });
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: 'echo should-not-run\n',
    options: [
      '--signing-key',
      join(keys[0] ?? '', 'signing-key.pem'),
      '--public-key',
      join(keys[1] ?? '', 'public-key.pem'),
    ],
  });
  assert.equal(run.code, 1);
  assert.match(run.stderr, /is not the public key of --signing-key/);
});

test('a run killed with SIGKILL is finished from its state file: evidence kept and sealed, given to whoever ran sudo, nothing left', async () => {
  const run = await runAgent({
    policy: policyFor(origin.port),
    // As the action's main step runs it through sudo: the post step's cleanup collects the
    // evidence, and a later step of the runner user's must be able to read it.
    env: { SUDO_UID: '65534', SUDO_GID: '65534' },
    script: `${viaProxy} http://127.0.0.1:${origin.port}/public/before-kill; echo; sleep 600\n`,
    onStderr: [
      {
        text: 'starting agent.sh',
        action: (pid) => setTimeout(() => process.kill(pid, 'SIGKILL'), 1_000),
      },
    ],
    untilExit: true,
  });
  const runId = /run (pe-[0-9a-f]{10}): setting up/.exec(run.stderr)?.[1] ?? '';
  assert.equal(run.code, null, 'the run was killed');
  assert.match(runId, /^pe-[0-9a-f]{10}$/);
  assert.ok(
    existsSync(`/run/pipelock-egress/${runId}/state.json`),
    'the killed run left its state',
  );
  // The agent (sleeping for 10 minutes) does not outlive its run until cleanup comes.
  const agentProcesses = () =>
    spawnSync('pgrep', ['-a', '-u', 'pipelock-agent'], { encoding: 'utf8' }).stdout.trim();
  const deadline = Date.now() + 5_000;
  while (agentProcesses() !== '' && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(agentProcesses(), '', 'the agent died with its run');
  assert.deepEqual(await recoverRun(runId), []);
  assert.deepEqual(await recoverRun(runId), [], 'recovering twice is harmless');
  const evidence = evidenceOf(run);
  assert.deepEqual(
    evidence.decisions.map((r) => r.action_record.target),
    [`http://127.0.0.1:${origin.port}/public/before-kill`],
  );
  const collected = [
    run.out,
    join(run.out, 'evidence'),
    join(run.out, 'engine.log'),
    ...readdirSync(join(run.out, 'evidence')).map((name) => join(run.out, 'evidence', name)),
  ];
  assert.ok(collected.length >= 3, collected.join(' '));
  for (const file of collected) {
    const info = statSync(file);
    assert.deepEqual([info.uid, info.gid], [65534, 65534], file);
  }
});

test('cleanup of a run still going stops it first: it seals its evidence and tears itself down, no false alarm', async () => {
  let recovered: Promise<string[]> | undefined;
  const said: string[] = [];
  const run = await runAgent({
    policy: policyFor(origin.port),
    script: `${viaProxy} http://127.0.0.1:${origin.port}/public/before-cleanup; echo; sleep 600\n`,
    onStderr: [
      {
        text: 'starting agent.sh',
        // As the post step does when the main step was killed but `run` (under sudo) was not.
        action: () =>
          setTimeout(() => {
            const [runId = ''] = readdirSync('/run/pipelock-egress').filter((name) =>
              name.startsWith('pe-'),
            );
            recovered = recoverRun(runId, (line) => said.push(line));
          }, 1_000),
      },
    ],
  });
  assert.deepEqual(await recovered, []);
  assert.match(said.join('\n'), /^pe-[0-9a-f]{10} is still running \(pid [0-9]+\): stopping it/);
  assert.equal(run.code, 143, run.stderr);
  assert.match(run.stderr, /SIGTERM: stopping the agent, sealing the evidence, tearing down/);
  assert.doesNotMatch(
    run.stderr,
    /not written by the engine|boundary failed|run pe-[0-9a-f]{10}: warning/,
  );
  assert.deepEqual(
    evidenceOf(run).decisions.map((r) => r.action_record.target),
    [`http://127.0.0.1:${origin.port}/public/before-cleanup`],
  );
});

test('an existing pipelock-agent in a privileged group is refused, and left as it was', async () => {
  execFileSync('useradd', [
    '--system',
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    '--groups',
    'adm',
    'pipelock-agent',
  ]);
  try {
    const run = await runAgent({ policy: policyFor(origin.port), script: 'echo should-not-run\n' });
    assert.equal(run.code, 1);
    assert.doesNotMatch(run.stdout, /should-not-run/);
    assert.match(
      run.stderr,
      /user pipelock-agent belongs to the privileged group adm; remove it \(gpasswd -d pipelock-agent adm\)/,
    );
    assert.match(execFileSync('id', ['-Gn', 'pipelock-agent'], { encoding: 'utf8' }), /\badm\b/);
  } finally {
    execFileSync('userdel', ['pipelock-agent']);
  }
});

test('an evidence output the agent could write (inside --writable, or open to others) is refused up front', async () => {
  const refused = async (options: Partial<AgentRunOptions>, reason: RegExp): Promise<void> => {
    const run = await runAgent({
      policy: policyFor(origin.port),
      script: 'echo should-not-run\n',
      ...options,
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, reason);
    assert.doesNotMatch(run.stdout, /should-not-run/);
  };
  await refused(
    {
      dirs: ['results'],
      options: ['--writable', 'results', '--evidence-output', 'results/packet'],
    },
    /--evidence-output .*results\/packet overlaps --writable .*results: the agent could tamper/,
  );
  const open = scratchDir('pe-open-out-');
  chmodSync(open, 0o777);
  await refused(
    { options: ['--evidence-output', open] },
    /is writable by other users \(mode 777\)/,
  );
  // Through a symlink into a writable path; in a directory of another user's (the agent's uid
  // is reused from run to run); not yet made, in a directory anyone may create it in first.
  await refused(
    {
      dirs: ['results'],
      links: { lnk: 'results' },
      options: ['--writable', 'results', '--evidence-output', 'lnk/packet'],
    },
    /--evidence-output .*lnk\/packet overlaps --writable .*results/,
  );
  const foreign = scratchDir('pe-foreign-out-');
  chownSync(foreign, 65534, 65534);
  await refused(
    { options: ['--evidence-output', join(foreign, 'packet')] },
    /pe-foreign-out-[^ ]+ belongs to uid 65534, who could replace what is in it/,
  );
  const sticky = scratchDir('pe-sticky-out-');
  chmodSync(sticky, 0o1777);
  await refused(
    { options: ['--evidence-output', join(sticky, 'packet')] },
    /is writable by other users \(mode 1777\), so the agent could create the output before/,
  );
  const file = join(scratchDir('pe-file-out-'), 'a-file');
  writeFileSync(file, '');
  await refused(
    { options: ['--evidence-output', join(file, 'packet')] },
    /a-file is not a directory/,
  );
  // Anything already in the output (links planted through an earlier run's writable path,
  // a FIFO) would take root's writes elsewhere, or hang them.
  const planted = scratchDir('pe-planted-out-');
  const victim = join(scratchDir('pe-victim-'), 'root-only.txt');
  writeFileSync(victim, 'ORIGINAL');
  symlinkSync(victim, join(planted, 'packet.json'));
  execFileSync('mkfifo', [join(planted, 'summary.md')]);
  await refused(
    { options: ['--evidence-output', planted] },
    /--evidence-output .*pe-planted-out-[^ ]+ already holds 2 entries \((packet\.json, summary\.md|summary\.md, packet\.json)\); the packet is written into an empty or new directory/,
  );
  assert.equal(readFileSync(victim, 'utf8'), 'ORIGINAL');
});
