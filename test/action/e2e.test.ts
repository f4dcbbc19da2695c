// The action end to end, the way the runner runs it: `node dist/main.js` as a non-root user
// with passwordless sudo (as on GitHub-hosted runners), INPUT_* variables with their hyphens,
// the runner's files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_STATE, GITHUB_PATH), then
// `node dist/post.js` with the saved state. Real boundary, loopback origin only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { startOrigin, type Origin } from '../engine/helpers.js';
import { assertNothingLeft, requireBuiltCli, snapshot } from '../boundary/harness.js';
import { validatePacket } from '../packet/schema.js';
import { scratchDir } from '../scratch.js';

const RUNNER_USER = 'pe-test-runner';
const SUDOERS = '/etc/sudoers.d/pe-test-runner';
let origin: Origin;
let uid = 0;
let gid = 0;
let node = '';

before(async () => {
  requireBuiltCli();
  origin = await startOrigin((req, res) => res.end(`origin saw ${req.method} ${req.url}`));
  execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', RUNNER_USER]);
  writeFileSync(SUDOERS, `${RUNNER_USER} ALL=(ALL) NOPASSWD:ALL\n`, { mode: 0o440 });
  uid = Number(execFileSync('id', ['-u', RUNNER_USER], { encoding: 'utf8' }));
  gid = Number(execFileSync('id', ['-g', RUNNER_USER], { encoding: 'utf8' }));
  // This node may sit in a directory only root can enter (CI installs Node 24 in one).
  const bin = scratchDir('pe-runner-node-');
  chmodSync(bin, 0o755);
  node = join(bin, 'node');
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
});

after(async () => {
  await origin.close();
  rmSync(SUDOERS, { force: true });
  execFileSync('userdel', ['--remove', RUNNER_USER], { stdio: 'ignore' });
});

interface Step {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runAsRunner(script: string, env: Record<string, string>): Promise<Step> {
  return new Promise((done) => {
    const child = spawn(node, [resolve(script)], { uid, gid, env, cwd: env['GITHUB_WORKSPACE'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** `name<<delimiter\nvalue\ndelimiter` records, as @actions/core writes the runner's files. */
function readRunnerFile(file: string): Record<string, string> {
  const values: Record<string, string> = {};
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(/^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) {
    values[match[1] ?? ''] = match[3] ?? '';
  }
  return values;
}

function owned(path: string, mode: number): string {
  chownSync(path, uid, gid);
  chmodSync(path, mode);
  return path;
}

test('the action as a non-root runner with sudo: outputs, packet, summary, CLI on PATH, post cleanup', async () => {
  const machine = snapshot();
  const root = owned(scratchDir('pe-runner-'), 0o755);
  mkdirSync(join(root, 'workspace', 'scripts'), { recursive: true });
  mkdirSync(join(root, 'workspace', 'keys'));
  execFileSync(
    process.execPath,
    [resolve('dist/cli.js'), 'keygen', '--out', join(root, 'workspace', 'keys', 'k')],
    { stdio: 'ignore' },
  );
  const signingKey = readFileSync(join(root, 'workspace', 'keys', 'k', 'signing-key.pem'), 'utf8');
  rmSync(join(root, 'workspace', 'keys', 'k', 'signing-key.pem'));
  writeFileSync(
    join(root, 'workspace', 'scripts', 'agent.sh'),
    `curl -sS --noproxy "" http://127.0.0.1:${origin.port}/public/ok; echo
curl -sS --noproxy "" -X POST -d x http://127.0.0.1:${origin.port}/public/ok; echo
`,
  );
  writeFileSync(
    join(root, 'workspace', 'policy.yaml'),
    `version: "1.0"\negress:\n  - destination: "127.0.0.1:${origin.port}"\n    methods: ["GET"]\n    paths: ["/public/"]\n`,
  );
  const temp = join(root, 'runner-temp');
  mkdirSync(temp);
  owned(temp, 0o700);
  const files: Record<string, string> = {};
  for (const name of [
    'GITHUB_OUTPUT',
    'GITHUB_STEP_SUMMARY',
    'GITHUB_STATE',
    'GITHUB_PATH',
    'GITHUB_ENV',
  ]) {
    files[name] = join(root, name.toLowerCase());
    writeFileSync(files[name] ?? '', '');
    owned(files[name] ?? '', 0o644);
  }
  execFileSync('chown', ['-R', `${uid}:${gid}`, join(root, 'workspace')]);
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: `/home/${RUNNER_USER}`,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: join(root, 'workspace'),
    GITHUB_REPOSITORY: 'acme/widgets',
    GITHUB_SHA: 'a'.repeat(40),
    GITHUB_RUN_ID: '42',
    RUNNER_TEMP: temp,
    RUNNER_OS: 'Linux',
    ...files,
    'INPUT_AGENT-SCRIPT': 'scripts/agent.sh',
    'INPUT_AGENT-ARGS': '',
    'INPUT_POLICY-CONFIG': 'policy.yaml',
    'INPUT_EVIDENCE-OUTPUT': 'audit-artifacts',
    'INPUT_SIGNING-KEY': signingKey,
    'INPUT_PUBLIC-KEY': 'keys/k/public-key.pem',
    'INPUT_AGENT-IDENTITY': 'triage-bot',
    'INPUT_WORKING-DIRECTORY': '.',
    'INPUT_FAIL-ON-VERIFIER-ERROR': 'true',
    'INPUT_UPLOAD-ARTIFACT': 'true',
    'INPUT_ARTIFACT-NAME': 'audit-packet',
    'INPUT_JOB-SUMMARY': 'true',
  };
  const main = await runAsRunner('dist/main.js', env);
  const log = `${main.stdout}\n${main.stderr}`;
  assert.equal(main.code, 0, log);
  assert.match(log, /through sudo/);
  // ::add-mask:: lines are the runner's masking commands (it consumes them, never shows them).
  const masks = log.split('\n').filter((line) => line.startsWith('::add-mask::'));
  const keyBody = signingKey.split('\n')[1] ?? '';
  assert.ok(
    masks.some((line) => line === `::add-mask::${keyBody}`),
    'the key is masked line by line',
  );
  const shown = log
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n');
  assert.doesNotMatch(shown, /PRIVATE KEY|MC4CAQAw/, 'the signing key never reaches the log');

  const outputs = readRunnerFile(files['GITHUB_OUTPUT'] ?? '');
  const packetDir = join(root, 'workspace', 'audit-artifacts');
  assert.equal(outputs['audit-packet-path'], packetDir);
  assert.equal(outputs['verifier-verdict'], 'valid');
  assert.equal(outputs['allowed-count'], '1');
  assert.equal(outputs['blocked-count'], '1');
  assert.equal(outputs['agent-exit-code'], '0');
  assert.equal(outputs['receipt-count'], '4');
  assert.match(outputs['policy-hash'] ?? '', /^[0-9a-f]{64}$/);
  assert.match(log, /no Actions runtime \(a local run\): artifact upload skipped/);

  const packet = JSON.parse(readFileSync(join(packetDir, 'packet.json'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  assert.ok(validatePacket(packet), JSON.stringify(validatePacket.errors));
  assert.equal(packet['run']?.['provider'], 'github_actions');
  assert.equal(packet['run']?.['repository'], 'acme/widgets');
  assert.equal(packet['run']?.['agent_identity'], 'triage-bot');
  assert.equal(packet['verifier']?.['trusted'], true);
  assert.equal(
    statOwner(join(packetDir, 'packet.json')),
    uid,
    'the packet belongs to the runner user',
  );

  const summary = readFileSync(files['GITHUB_STEP_SUMMARY'] ?? '', 'utf8');
  assert.match(summary, /✅ \*\*valid\*\*/);
  assert.match(summary, /POST `http:\/\/127\.0\.0\.1:[0-9]+\/public\/ok`: method/);

  // The CLI is on PATH for later steps, and verifies the packet with the pinned key.
  const path = readFileSync(files['GITHUB_PATH'] ?? '', 'utf8').trim();
  const verify = execFileSync(
    join(path, 'pipelock-egress'),
    [
      'verify',
      '--receipt-chain',
      join(packetDir, 'evidence.jsonl'),
      '--public-key',
      join(root, 'workspace', 'keys', 'k', 'public-key.pem'),
      '--policy-hash',
      join(packetDir, 'policy-hash.txt'),
      '--require-sealed',
      '--whole-recorder',
    ],
    { encoding: 'utf8' },
  );
  assert.match(verify, /^CHAIN VALID/);
  // And the whole packet: every file of it agrees with the verified chain.
  const packetCheck = execFileSync(
    join(path, 'pipelock-egress'),
    [
      'verify',
      '--packet',
      packetDir,
      '--public-key',
      join(root, 'workspace', 'keys', 'k', 'public-key.pem'),
    ],
    { encoding: 'utf8' },
  );
  assert.match(packetCheck, new RegExp(`\\nPACKET VALID: ${packetDir}\\n`));
  assert.equal(packetCheck.match(/^ {2}ok {8}\S/gm)?.length, 11, packetCheck);
  assert.match(packetCheck, /packet\.json .*as the chain's session open binds it/);

  const state = readRunnerFile(files['GITHUB_STATE'] ?? '');
  assert.match(state['boundary-run-id'] ?? '', /^pe-[0-9a-f]{10}$/);
  const post = await runAsRunner('dist/post.js', {
    ...env,
    ...Object.fromEntries(Object.entries(state).map(([name, value]) => [`STATE_${name}`, value])),
  });
  assert.equal(post.code, 0, `${post.stdout}\n${post.stderr}`);
  assert.match(`${post.stdout}${post.stderr}`, /nothing of it is left/);
  assertNothingLeft(machine);
});

function statOwner(path: string): number {
  return Number(execFileSync('stat', ['-c', '%u', path], { encoding: 'utf8' }));
}
