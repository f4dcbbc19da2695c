import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { runMain } from '../../src/action/main.js';
import { runPost } from '../../src/action/post.js';
import { recoverRun } from '../../src/boundary/recover.js';
import { holdUser, type HeldUser } from '../boundary/harness.js';
import { actionsRunner } from '../../src/action/runner.js';
import { inInputNames, stepResult } from '../../src/action/run-invocation.js';
import { policyHash } from '../../src/policy/index.js';
import { runtimeToken, sha256Hex, startArtifactService } from './artifact-service.js';
import { recordingRunner, REFERENCE_POLICY, workspace } from './helpers.js';
import { scratchDir } from '../scratch.js';

test('refuses to run on a non-Linux runner, before reading any input', async () => {
  const runner = recordingRunner({}, { platform: 'darwin' });
  await runMain(runner);
  assert.equal(runner.recorded.failures.length, 1);
  assert.match(
    runner.recorded.failures[0] ?? '',
    /^Linux runners only: this runner is darwin\..*never runs unprotected/,
  );
});

test('invalid inputs fail the step listing each one', async () => {
  const runner = recordingRunner({ 'agent-script': '', 'job-summary': 'maybe' });
  await runMain(runner);
  const [failure = ''] = runner.recorded.failures;
  assert.match(failure, /^invalid inputs; nothing was started:/);
  assert.match(failure, /input agent-script: the agent script path is required/);
  assert.match(failure, /input policy-config: the policy file path is required/);
  assert.match(failure, /input job-summary: expected true or false, got "maybe"/);
});

test('an agent script outside the working directory is refused', async () => {
  const dir = await workspace();
  const runner = recordingRunner({
    'working-directory': dir,
    'agent-script': '../../../../etc/passwd',
    'policy-config': 'policy.yaml',
  });
  await runMain(runner);
  assert.match(
    runner.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput agent-script: \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd resolves to \/etc\/passwd, outside the working directory/,
  );
});

test('a symlink that points out of the working directory is refused', async () => {
  const dir = await workspace();
  await symlink('/etc/hostname', join(dir, 'scripts/escape.sh'));
  const runner = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts/escape.sh',
    'policy-config': 'policy.yaml',
  });
  await runMain(runner);
  assert.match(
    runner.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput agent-script: scripts\/escape\.sh resolves to \/etc\/hostname, outside/,
  );
});

test('a missing policy file and a directory as script are refused by name', async () => {
  const dir = await workspace();
  const missing = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts/agent.sh',
    'policy-config': 'nope.yaml',
  });
  await runMain(missing);
  assert.match(
    missing.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput policy-config: nope\.yaml does not exist/,
  );
  const directory = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts',
    'policy-config': 'policy.yaml',
  });
  await runMain(directory);
  assert.match(
    directory.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput agent-script: .*scripts is not a regular file/,
  );
});

test('an invalid policy fails with every error as file:line:col', async () => {
  const dir = await workspace();
  await writeFile(
    join(dir, 'policy.yaml'),
    'version: "1.0"\negress:\n  - destination: "*.*.example.com"\n',
  );
  const runner = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts/agent.sh',
    'policy-config': 'policy.yaml',
  });
  await runMain(runner);
  assert.match(
    runner.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput policy-config: the policy is invalid:\npolicy\.yaml:3:18: egress\[0\]\.destination: /,
  );
});

test('as root, a valid setup runs the agent in the boundary and reports the packet (no sudo needed)', async () => {
  const dir = await workspace();
  const out = join(scratchDir('pe-action-out-'), 'packet');
  // What an agent could plant in a shared temporary directory for the shim's old fixed name.
  const victim = join(dir, 'victim.txt');
  await writeFile(victim, 'untouched\n');
  await mkdir(join(dir, 'pipelock-egress-bin'));
  await symlink(victim, join(dir, 'pipelock-egress-bin', 'pipelock-egress'));
  const runner = recordingRunner(
    {
      'working-directory': dir,
      'agent-script': 'scripts/agent.sh',
      'policy-config': 'policy.yaml',
      'evidence-output': out,
    },
    {
      env: {
        PATH: process.env['PATH'] ?? '',
        RUNNER_TEMP: dir,
        // A credential of several lines: the runner masks within one line of the log.
        DEPLOY_PRIVATE_KEY: '{\n  "key": "first-secret-line",\n  "client": "second-secret-line"\n}',
      },
      uid: 0,
    },
  );
  await runMain(runner);
  assert.deepEqual(runner.recorded.failures, []);
  for (const masked of ['"key": "first-secret-line",', '"client": "second-secret-line"'])
    assert.ok(runner.recorded.secrets.includes(masked), masked);
  assert.ok(!runner.recorded.secrets.includes('{'), 'short lines are not masked');
  assert.equal(
    runner.recorded.outputs['policy-hash'],
    policyHash(await readFile(REFERENCE_POLICY)),
  );
  assert.equal(runner.recorded.outputs['verifier-verdict'], 'self_consistent_only');
  assert.equal(runner.recorded.outputs['agent-exit-code'], '0');
  assert.equal(runner.recorded.outputs['receipt-count'], '2');
  assert.equal(runner.recorded.outputs['audit-packet-path'], out);
  assert.match(runner.recorded.summaries[0] ?? '', /self-consistent only/);
  assert.ok(
    runner.recorded.infos.some((line) =>
      /^warning: the evidence is only self-consistent/.test(line),
    ),
  );
  assert.match(runner.recorded.state['boundary-run-id'] ?? '', /^pe-[0-9a-f]{10}$/);
  assert.equal(runner.recorded.paths.length, 1, 'pipelock-egress is put on PATH');
  const [bin = ''] = runner.recorded.paths;
  assert.match(bin, new RegExp(`^${dir}/pipelock-egress-bin-[A-Za-z0-9]{6}$`));
  assert.equal((await stat(bin)).mode & 0o777, 0o700);
  assert.match(await readFile(join(bin, 'pipelock-egress'), 'utf8'), /^#!\/bin\/sh\nexec /);
  assert.equal(await readFile(victim, 'utf8'), 'untouched\n');
  const paused = runner.recorded.infos.indexOf('commands paused');
  assert.ok(paused >= 0 && runner.recorded.infos.indexOf('commands resumed') > paused);
});

test('every problem the action finds in its inputs is reported at once, before anything starts', async () => {
  const dir = await workspace();
  await writeFile(
    join(dir, 'policy.yaml'),
    'version: "1.0"\negress:\n  - destination: "010.0.0.1"\n',
  );
  const runner = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts/missing.sh',
    'policy-config': 'policy.yaml',
    'signing-key': 'not-a-key-file.pem',
    'enforcement-binary': '/usr/local/bin/pipelock',
  });
  await runMain(runner);
  const [failure = ''] = runner.recorded.failures;
  const lines = failure.split('\n');
  assert.equal(lines[0], 'invalid inputs; nothing was started:');
  for (const input of ['policy-config', 'signing-key', 'agent-script', 'enforcement-binary'])
    assert.ok(
      lines.some((line) => line.startsWith(`input ${input}: `)),
      `${input} in:\n${failure}`,
    );
  assert.match(failure, /policy\.yaml:3:18: egress\[0\]\.destination: "010\.0\.0\.1" is read as/);
  assert.deepEqual(runner.recorded.outputs, {});
});

test('what run refuses before anything starts fails the step in the names of the inputs', async () => {
  const dir = await workspace();
  const runner = recordingRunner(
    {
      'working-directory': dir,
      'agent-script': 'scripts/agent.sh',
      'policy-config': 'policy.yaml',
      'evidence-output': join(scratchDir('pe-action-out-'), 'packet'),
      'writable-paths': 'results',
    },
    { env: { PATH: process.env['PATH'] ?? '', RUNNER_TEMP: dir }, uid: 0 },
  );
  await runMain(runner);
  assert.deepEqual(runner.recorded.failures, [
    `invalid inputs; nothing was started:\ninput writable-paths: ${dir}/results does not exist (looked for ${dir}/results)`,
  ]);
});

test('an external enforcement binary is refused as not available yet', async () => {
  const dir = await workspace();
  const runner = recordingRunner({
    'working-directory': dir,
    'agent-script': 'scripts/agent.sh',
    'policy-config': 'policy.yaml',
    'enforcement-binary': '/usr/local/bin/pipelock',
  });
  await runMain(runner);
  assert.match(
    runner.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput enforcement-binary: not available yet: driving an external pipelock has not landed/,
  );
});

test('post with no saved state has nothing to clean up and does not fail', async () => {
  const runner = recordingRunner({});
  await runPost(runner);
  assert.deepEqual(runner.recorded.failures, []);
  assert.match(runner.recorded.infos[0] ?? '', /nothing to clean up/);
});

test("post removes main's temporary directory (an inline key's file) when main could not, and nothing else", async () => {
  const base = scratchDir('pe-post-');
  const temp = join(base, 'pipelock-egress-AbC123');
  await mkdir(temp);
  await writeFile(join(temp, 'signing-key'), 'PRIVATE KEY');
  await runPost(recordingRunner({}, { state: { 'temp-dir': temp } }));
  await assert.rejects(stat(temp), { code: 'ENOENT' });
  // A path of another shape is not main's: left alone.
  const other = join(base, 'keys');
  await mkdir(other);
  await runPost(recordingRunner({}, { state: { 'temp-dir': other } }));
  assert.ok((await stat(other)).isDirectory());
});

test('the bundled dist/main.js runs with real INPUT_* variables and runner files', async () => {
  const dir = await workspace();
  // The agent's own output may not be read as workflow commands.
  await writeFile(
    join(dir, 'scripts/agent.sh'),
    'echo "::set-output name=artifact-id::4242"\necho "::error::forged by the agent"\nexit 3\n',
  );
  const result = await runBundledMain(dir);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /::error::the agent script exited with 3/);
  const lines = result.stdout.split('\n');
  const stop = lines.findIndex((line) => /^::stop-commands::[0-9a-f]{32}$/.test(line));
  const token = lines[stop]?.slice('::stop-commands::'.length);
  const resume = lines.indexOf(`::${token}::`);
  const forged = lines.indexOf('::error::forged by the agent');
  assert.ok(stop >= 0 && stop < forged && forged < resume, result.stdout);
  assert.ok(lines.indexOf('::set-output name=artifact-id::4242') > stop);
  const written = await readFile(result.outputFile, 'utf8');
  assert.match(
    written,
    new RegExp(
      `^policy-hash<<ghadelimiter_[0-9a-f-]+\\n${policyHash(await readFile(REFERENCE_POLICY))}\\n`,
    ),
  );
  assert.match(written, /agent-exit-code<<ghadelimiter_[0-9a-f-]+\n3\n/);
});

test('agent-args are read as written: spaces around the first and last argument are kept', () => {
  process.env['INPUT_AGENT-ARGS'] = '  first\n  mid  \nlast  \n';
  try {
    const inputs = actionsRunner().readInputs();
    assert.equal(inputs['agent-args'], '  first\n  mid  \nlast  \n');
    // Other inputs are trimmed as core.getInput does.
    process.env['INPUT_AGENT-IDENTITY'] = '  bot  ';
    assert.equal(actionsRunner().readInputs()['agent-identity'], 'bot');
  } finally {
    delete process.env['INPUT_AGENT-ARGS'];
    delete process.env['INPUT_AGENT-IDENTITY'];
  }
});

test('workflow commands resume on a line of their own, whatever the agent printed last', () => {
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => written.push(chunk) > 0) as typeof write;
  try {
    const resume = actionsRunner().pauseCommands();
    written.push('the agent printed this without a newline');
    resume();
  } finally {
    process.stdout.write = write;
  }
  const lines = written.join('').split('\n');
  const token = /^::stop-commands::([0-9a-f]{32})$/.exec(lines[0] ?? '')?.[1];
  assert.ok(token !== undefined && lines.includes(`::${token}::`), lines.join(' | '));
});

test("run's problems are told in input names: an option opening one, named inside one, the script", () => {
  assert.equal(
    inInputNames('--upstream-ca ca.pem holds no PEM certificate'),
    'input upstream-ca: ca.pem holds no PEM certificate',
  );
  assert.equal(
    inInputNames('--public-key pins the key that signs this run, so it needs --signing-key'),
    'input public-key: pins the key that signs this run, so it needs input signing-key',
  );
  assert.equal(
    inInputNames('script run.sh does not exist (looked for /w/run.sh)'),
    'input agent-script: run.sh does not exist (looked for /w/run.sh)',
  );
  // The action's own options are no inputs: left as they are.
  assert.equal(inInputNames('--agent-env-file x: not JSON'), '--agent-env-file x: not JSON');
});

test('step rules: every verdict × fail-on-verifier-error × agent exit code × boundary failure', () => {
  const verdicts = ['valid', 'self_consistent_only', 'invalid', 'error'] as const;
  const teardown = 'teardown of pe-0123456789 failed: removing user pipelock-agent: in use';
  for (const verdict of verdicts) {
    for (const failOnVerifierError of [true, false]) {
      for (const agentExitCode of [0, 7]) {
        for (const boundaryFailure of [undefined, teardown]) {
          const result = stepResult(
            { verdict, agentExitCode, boundaryFailure },
            failOnVerifierError,
          );
          const verifierFails =
            (verdict === 'invalid' || verdict === 'error') && failOnVerifierError;
          const expected =
            boundaryFailure !== undefined
              ? `the boundary failed: ${teardown}. The Audit Packet was written; the post step's cleanup finishes the teardown, or says what is left`
              : verifierFails
                ? `the evidence verdict is ${verdict}; failing because fail-on-verifier-error is true`
                : agentExitCode !== 0
                  ? 'the agent script exited with 7'
                  : undefined;
          const label = `${verdict} fail-on-verifier-error=${failOnVerifierError} exit=${agentExitCode} boundary=${boundaryFailure}`;
          assert.equal(result.failed, expected, label);
          assert.equal(result.warning !== undefined, verdict === 'self_consistent_only', label);
        }
      }
    }
  }
});

test('on a runner with the Actions runtime the packet is uploaded as an artifact and artifact-id is set', async () => {
  const service = await startArtifactService();
  const dir = await workspace();
  const out = join(scratchDir('pe-action-out-'), 'packet');
  const saved = { ...process.env };
  Object.assign(process.env, {
    ACTIONS_RUNTIME_TOKEN: runtimeToken('run-backend-1', 'job-backend-2'),
    ACTIONS_RESULTS_URL: `${service.url}/`,
    GITHUB_WORKSPACE: dir,
  });
  try {
    const runner = recordingRunner(
      {
        'working-directory': dir,
        'agent-script': 'scripts/agent.sh',
        'policy-config': 'policy.yaml',
        'evidence-output': out,
        'artifact-name': 'audit-packet-test',
      },
      { env: { PATH: process.env['PATH'] ?? '', RUNNER_TEMP: dir }, uid: 0 },
    );
    await runMain(runner);
    assert.deepEqual(runner.recorded.failures, []);
    assert.equal(runner.recorded.outputs['artifact-id'], service.artifactId);
    const [artifact] = service.artifacts;
    assert.equal(artifact?.name, 'audit-packet-test');
    assert.deepEqual(artifact?.backendIds, ['run-backend-1', 'job-backend-2']);
    const blob = artifact?.blob ?? Buffer.alloc(0);
    assert.equal(artifact?.finalized?.hash, `sha256:${sha256Hex(blob)}`);
    const zip = join(dir, 'uploaded.zip');
    await writeFile(zip, blob);
    const listed = await promisify(execFile)('python3', ['-m', 'zipfile', '-l', zip]);
    for (const name of [
      'packet.json',
      'summary.md',
      'evidence.jsonl',
      'receipts.json',
      'verification-report.json',
      'policy-hash.txt',
      'evidence/evidence-proxy-0.jsonl',
    ]) {
      assert.match(listed.stdout, new RegExp(`^${name.replace(/[.]/g, '\\.')}\\s`, 'm'), name);
    }
  } finally {
    process.env = saved;
    await service.close();
  }
});

test('a cancelled step (SIGTERM to dist/main.js) passes the signal on: the run seals, tears down, the step fails', async () => {
  const dir = await workspace();
  await writeFile(join(dir, 'scripts/agent.sh'), 'echo started; sleep 600\n');
  const { code, log } = await runBundledMain(dir, (printed, child) => {
    if (printed.includes('starting agent.sh') && !child.killed) child.kill('SIGTERM');
  });
  assert.equal(code, 1, log);
  assert.match(log, /SIGTERM: stopping the agent, sealing the evidence, tearing down/);
  assert.match(log, /boundary torn down/);
  assert.match(log, /::error::the agent script exited with 137/);
  assert.match(
    await readFile(join(dir, 'packet', 'verification-report.json'), 'utf8'),
    /"sealed":\s*true/,
  );
});

test('a teardown that fails after the packet is written fails the step, naming what failed', async () => {
  const dir = await workspace();
  await writeFile(join(dir, 'scripts/agent.sh'), 'sleep 3\n');
  let held: HeldUser | undefined;
  const { code, log, outputFile } = await runBundledMain(dir, (printed) => {
    if (printed.includes('starting agent.sh') && held === undefined) {
      held = holdUser('pipelock-agent');
    }
  });
  await held?.release();
  const runId = /run (pe-[0-9a-f]{10}): setting up/.exec(log)?.[1] ?? '';
  try {
    assert.equal(code, 1, log);
    assert.match(
      log,
      /^::error::the boundary failed: teardown of pe-[0-9a-f]{10} failed: removing user pipelock-agent: .*The Audit Packet was written/m,
    );
    assert.match(
      await readFile(outputFile, 'utf8'),
      /agent-exit-code<<ghadelimiter_[0-9a-f-]+\n0\n/,
    );
  } finally {
    assert.deepEqual(await recoverRun(runId), []);
  }
});

test("a packet an earlier run left in the evidence output is never reported as this run's", async () => {
  const dir = await workspace();
  const out = join(scratchDir('pe-action-out-'), 'packet');
  const inputs = {
    'working-directory': dir,
    'agent-script': 'scripts/agent.sh',
    'policy-config': 'policy.yaml',
    'evidence-output': out,
  };
  const options = { env: { PATH: process.env['PATH'] ?? '', RUNNER_TEMP: dir }, uid: 0 };
  const first = recordingRunner(inputs, options);
  await runMain(first);
  assert.deepEqual(first.recorded.failures, []);
  const second = recordingRunner(inputs, options);
  await runMain(second);
  assert.match(
    second.recorded.failures[0] ?? '',
    /^invalid inputs; nothing was started:\ninput evidence-output: .* already holds \d+ entries/,
  );
  assert.equal(second.recorded.outputs['verifier-verdict'], undefined);
});

interface BundledMainRun {
  readonly code: number | null;
  readonly stdout: string;
  /** stdout and stderr as printed. */
  readonly log: string;
  readonly outputFile: string;
}

/**
 * dist/main.js run as a runner runs it, on the workspace's agent script and policy, the packet
 * going to `packet` in it; `watch` sees all it has printed so far each time it prints.
 */
async function runBundledMain(
  dir: string,
  watch?: (printed: string, child: ChildProcess) => void,
): Promise<BundledMainRun> {
  const outputFile = join(dir, 'github-output');
  await writeFile(outputFile, '');
  const child = spawn(process.execPath, [resolve('dist/main.js')], {
    env: {
      PATH: process.env['PATH'] ?? '',
      GITHUB_OUTPUT: outputFile,
      RUNNER_TEMP: dir,
      'INPUT_AGENT-SCRIPT': 'scripts/agent.sh',
      'INPUT_POLICY-CONFIG': 'policy.yaml',
      'INPUT_WORKING-DIRECTORY': dir,
      'INPUT_EVIDENCE-OUTPUT': join(dir, 'packet'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let log = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    stdout += text;
    log += text;
    watch?.(log, child);
  });
  child.stderr.on('data', (text: string) => {
    log += text;
    watch?.(log, child);
  });
  const code = await new Promise<number | null>((done) => child.on('close', done));
  return { code, stdout, log, outputFile };
}
