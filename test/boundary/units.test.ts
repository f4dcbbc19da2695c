// The boundary's pure parts: the agent's environment, the probe verdicts, the launch command
// line, the sudoers drop-in and the account checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentEnvironment } from '../../src/boundary/agent-env.js';
import { agentArgv } from '../../src/boundary/agent-launch.js';
import { readProbeOutput } from '../../src/boundary/probes.js';
import { sudoersDenyText } from '../../src/boundary/sudoers.js';
import { accountProblem } from '../../src/boundary/users.js';

const plan = {
  proxyUrl: 'http://127.0.0.1:4000',
  home: '/run/h',
  user: 'pipelock-agent',
  caBundle: '/run/ca.pem',
};

test('agent environment: runner internals and stale proxies dropped, everything else kept', () => {
  const env = agentEnvironment(
    {
      PATH: '/usr/bin',
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't',
      ACTIONS_RUNTIME_URL: 'u',
      INPUT_POLICY_CONFIG: 'p',
      GITHUB_ENV: '/e',
      GITHUB_STEP_SUMMARY: '/s',
      GITHUB_SHA: 'abc',
      SUDO_COMMAND: 'x',
      PIPELOCK_SIGNING_KEY: '/k',
      https_proxy: 'http://corp:3128',
      no_proxy: '*',
      AGENT_TOKEN: 'secret',
    },
    plan,
  );
  for (const gone of [
    'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
    'ACTIONS_RUNTIME_URL',
    'INPUT_POLICY_CONFIG',
    'GITHUB_ENV',
    'GITHUB_STEP_SUMMARY',
    'SUDO_COMMAND',
    'PIPELOCK_SIGNING_KEY',
  ]) {
    assert.equal(env[gone], undefined, gone);
  }
  assert.equal(env['GITHUB_SHA'], 'abc');
  assert.equal(env['AGENT_TOKEN'], 'secret');
  assert.equal(env['https_proxy'], plan.proxyUrl);
  assert.equal(env['no_proxy'], 'localhost,127.0.0.1,::1');
  assert.equal(env['PATH'], '/usr/bin');
  assert.equal(env['LANG'], 'C.UTF-8');
});

test('agent environment: a caller without PATH gets the standard one', () => {
  const env = agentEnvironment({}, plan);
  assert.equal(env['PATH'], '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
});

const allPassing = [
  'interfaces',
  'routes',
  'capabilities',
  'no_new_privs',
  'identity',
  'workdir_readable',
  'pid_namespace',
  'no_terminal',
  'descriptors',
  'engine_health',
]
  .map((name) => `ok ${name}`)
  .join('\n');

test('probes: every required probe must report ok; silence, noise or a non-zero exit is failure', () => {
  assert.deepEqual(readProbeOutput(`${allPassing}\n`, 0).failed, []);
  assert.deepEqual(readProbeOutput(allPassing.replace('ok routes\n', ''), 0).failed, [
    'routes: did not report',
  ]);
  assert.deepEqual(readProbeOutput(`${allPassing}\nfail interfaces: eth0`, 0).failed, [
    'interfaces: eth0',
  ]);
  assert.deepEqual(readProbeOutput(`${allPassing}\nsurprise`, 0).failed, [
    'unexpected probe output: surprise',
  ]);
  assert.deepEqual(readProbeOutput(allPassing, 1).failed, ['the probe script exited 1']);
  assert.equal(readProbeOutput('', null).failed.length, 11);
});

test('launch: netns, then new mount and PID namespaces, then setup as root, then the script with its args verbatim', () => {
  const argv = agentArgv(
    {
      ip: '/ip',
      unshare: '/unshare',
      mount: '/mount',
      prlimit: '/prlimit',
      setpriv: '/setpriv',
      setsid: '/setsid',
      bash: '/bash',
    },
    {
      netns: 'pe-0123456789',
      workdir: '/w',
      uid: 990,
      gid: 991,
      maxProcesses: 64,
      caBundle: '/ca',
      caBundleTargets: ['/etc/ssl/certs/ca-certificates.crt'],
      masked: ['/run/docker.sock', '/k'],
    },
    '/s/agent.sh',
    ['one arg', '--flag', ''],
  );
  assert.deepEqual(argv.slice(0, 4), ['/ip', 'netns', 'exec', 'pe-0123456789']);
  assert.deepEqual(argv.slice(4, 13), [
    '/unshare',
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--ipc',
    '--fork',
    '--mount-proc',
    '--kill-child',
  ]);
  assert.deepEqual(argv.slice(13, 15), ['--', '/bash']);
  assert.deepEqual(argv.slice(-4), ['/s/agent.sh', 'one arg', '--flag', '']);
  assert.deepEqual(argv.slice(18, 33), [
    '/mount',
    '/prlimit',
    '/setpriv',
    '/setsid',
    '/bash',
    '/w',
    '990',
    '991',
    '64',
    '/ca',
    '1',
    '/etc/ssl/certs/ca-certificates.crt',
    '2',
    '/run/docker.sock',
    '/k',
  ]);
});

test('sudoers drop-in denies each user everything', () => {
  assert.equal(
    sudoersDenyText(['pipelock-agent', 'pipelock-host']),
    "# pipelock-egress: the boundary's users may not use sudo\npipelock-agent ALL=(ALL:ALL) !ALL\npipelock-host ALL=(ALL:ALL) !ALL\n",
  );
});

test('accounts in a privileged group, or with uid 0, are refused with the fix', () => {
  assert.equal(accountProblem('pipelock-agent', 990, ['pipelock-agent']), undefined);
  assert.match(
    accountProblem('pipelock-agent', 990, ['pipelock-agent', 'docker', 'adm']) ?? '',
    /privileged groups docker, adm; remove it \(gpasswd -d pipelock-agent docker\)/,
  );
  assert.match(accountProblem('pipelock-host', 0, []) ?? '', /uid 0/);
});
