// The boundary's pure parts: the agent's environment, the probe verdicts, the launch command
// line, the sudoers drop-in, the account checks and a run process's start time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentEnvironment } from '../../src/boundary/agent-env.js';
import { agentArgv, type LaunchPlan } from '../../src/boundary/agent-launch.js';
import { SYSCALLS, seccompFilter } from '../../src/boundary/seccomp.js';
import { readProbeOutput } from '../../src/boundary/probes.js';
import { sudoersDenyText } from '../../src/boundary/sudoers.js';
import { accountProblem } from '../../src/boundary/users.js';
import { startTimeOf } from '../../src/boundary/run-process.js';

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
      NODE_USE_ENV_PROXY: '0',
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
  assert.equal(env['NODE_USE_ENV_PROXY'], '1');
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
  'seccomp',
  'identity',
  'workdir_readable',
  'pid_namespace',
  'no_terminal',
  'descriptors',
  'private_run',
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
  assert.equal(readProbeOutput('', null).failed.length, 13);
});

const LAUNCH_TOOLS = {
  ip: '/ip',
  unshare: '/unshare',
  mount: '/mount',
  prlimit: '/prlimit',
  setpriv: '/setpriv',
  setsid: '/setsid',
  bash: '/bash',
  perl: '/perl',
};

const LAUNCH_PLAN: LaunchPlan = {
  netns: 'pe-0123456789',
  workdir: '/w',
  uid: 990,
  gid: 991,
  maxProcesses: 64,
  caBundle: '/ca',
  caBundleTargets: ['/etc/ssl/certs/ca-certificates.crt'],
  masked: ['/var/run/docker.sock', '/k'],
  privateDirs: [
    { path: '/tmp', mode: '1777', stage: '/run/pe/stages/tmp', keep: ['/tmp/w'] },
    {
      path: '/run',
      mode: '0755',
      stage: '/run/pe/stages/run',
      keep: ['/run/pe/agent', '/run/pe/home'],
    },
  ],
  syscalls: SYSCALLS['x64'] ?? assert.fail(),
};

test('launch: netns, then new mount, PID and IPC namespaces, setup as root, the filter, then the script with its args verbatim', () => {
  const argv = agentArgv(LAUNCH_TOOLS, LAUNCH_PLAN, '/s/agent.sh', ['one arg', '--flag', '']);
  assert.deepEqual(argv.slice(0, 4), ['/setpriv', '--pdeathsig', 'KILL', '--']);
  argv.splice(0, 4);
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
  assert.deepEqual(argv.slice(17, 38), [
    'pipelock-egress-setup',
    '/mount',
    '/w',
    '/ca',
    '1',
    '/etc/ssl/certs/ca-certificates.crt',
    '2',
    '/tmp',
    '1777',
    '/run/pe/stages/tmp',
    '1',
    '/tmp/w',
    '/run',
    '0755',
    '/run/pe/stages/run',
    '2',
    '/run/pe/agent',
    '/run/pe/home',
    '2',
    '/var/run/docker.sock',
    '/k',
  ]);
  const perl = argv.indexOf('/perl');
  assert.equal(perl, 38);
  assert.match(argv[perl + 3] ?? '', /^([0-9a-f]{16})+$/);
  assert.deepEqual(argv.slice(perl + 4, perl + 6), ['157', '317']);
  assert.deepEqual(argv.slice(perl + 6), [
    '/setsid',
    '--wait',
    '/prlimit',
    '--nproc=64',
    '--',
    '/setpriv',
    '--reuid=990',
    '--regid=991',
    '--clear-groups',
    '--inh-caps=-all',
    '--ambient-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--pdeathsig',
    'KILL',
    '--',
    '/bash',
    '-c',
    argv[perl + 24] ?? '',
    // The init's $0 is the shell it starts the script with, as its child.
    '/bash',
    '/s/agent.sh',
    'one arg',
    '--flag',
    '',
  ]);
  assert.match(argv[perl + 24] ?? '', /^"\$0" "\$@" &\n/);
});

test('launch: a private directory keeps only what is under it', () => {
  const plan = (keep: string[]): LaunchPlan => ({
    ...LAUNCH_PLAN,
    privateDirs: [{ path: '/run', mode: '0755', stage: '/run/pe/stage', keep }],
  });
  for (const stray of ['/home/agent', '/run', '/running/x', 'run/x']) {
    assert.throws(() => agentArgv(LAUNCH_TOOLS, plan([stray]), '/s', []), /is not under \/run/);
  }
  assert.doesNotThrow(() => agentArgv(LAUNCH_TOOLS, plan(['/run/pe/agent']), '/s', []));
});

/** Runs a classic BPF seccomp program (the instructions the filter uses) on one call. */
function runFilter(filter: Buffer, call: { arch: number; nr: number; arg0?: number }): string {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, 0);
  data.writeUInt32LE(call.arch >>> 0, 4);
  data.writeUInt32LE((call.arg0 ?? 0) >>> 0, 16);
  let accumulator = 0;
  for (let pc = 0; pc < filter.length / 8; pc++) {
    const code = filter.readUInt16LE(pc * 8);
    const k = filter.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) accumulator = data.readUInt32LE(k);
    else if (code === 0x06) {
      if (k === 0x7fff0000) return 'allow';
      assert.equal(k >>> 16, 0x5, 'only ERRNO and ALLOW are returned');
      return `errno ${k & 0xffff}`;
    } else {
      const taken = code === 0x15 ? accumulator === k : accumulator >= k;
      assert.ok(code === 0x15 || code === 0x35, `instruction ${code}`);
      pc += taken ? filter.readUInt8(pc * 8 + 2) : filter.readUInt8(pc * 8 + 3);
    }
  }
  return assert.fail('the program ran off its end');
}

test('seccomp filter: socket families an agent needs only; io_uring, keyrings, x32 and other ABIs refused', () => {
  for (const [arch, table] of Object.entries(SYSCALLS)) {
    const filter = seccompFilter(table);
    const run = (nr: number, arg0 = 0, auditArch = table.auditArch) =>
      runFilter(filter, { arch: auditArch, nr, arg0 });
    for (const family of [1, 2, 10, 16]) assert.equal(run(table.socket, family), 'allow', arch);
    // AF_PACKET, AF_VSOCK, AF_XDP, AF_BLUETOOTH, and the high half of the argument ignored.
    for (const family of [17, 40, 44, 31, 0x10000 + 2])
      assert.equal(run(table.socket, family), 'errno 97', `${arch} family ${family}`);
    assert.equal(run(table.ioUringSetup), 'errno 38', arch);
    for (const call of table.keyrings) assert.equal(run(call), 'errno 38', `${arch} ${call}`);
    assert.equal(run(0), 'allow', arch);
    assert.equal(run(table.socket + 1, 40), 'allow', arch);
    assert.equal(run(table.socket, 2, 0x40000003), 'errno 38', `${arch}: i386`);
    if (table.x32Bit !== undefined)
      assert.equal(run(table.x32Bit + table.socket, 40), 'errno 38', `${arch}: x32`);
  }
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

test("a run process's start time is field 22 of /proc/PID/stat, whatever its command name holds", () => {
  const rest = 'R 1069 1069 14214 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 4675684 3133440 360';
  assert.equal(startTimeOf(`1072 (cat) ${rest}`), '4675684');
  assert.equal(startTimeOf(`1072 (a) b (c)) ${rest}`), '4675684');
  assert.equal(startTimeOf('1072 (cat) R 1'), undefined);
});
