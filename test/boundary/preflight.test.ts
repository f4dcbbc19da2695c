import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  REQUIRED_TOOLS,
  gatherHostFacts,
  preflightProblems,
  type HostFacts,
} from '../../src/boundary/preflight.js';
import { main } from '../../src/cli/main.js';
import { scratchDir } from '../scratch.js';

const ready: HostFacts = {
  platform: 'linux',
  arch: 'x64',
  uid: 0,
  tools: Object.fromEntries(REQUIRED_TOOLS.map(({ tool }) => [tool, `/usr/sbin/${tool}`])),
  namespaces: ['net', 'mnt', 'pid', 'ipc'],
};

test('a Linux root machine with every tool and namespace has no preflight problem', () => {
  assert.deepEqual(preflightProblems(ready, { acl: false }), []);
});

test('an architecture without a seccomp table is a problem that names it', () => {
  assert.deepEqual(preflightProblems({ ...ready, arch: 'riscv64' }, { acl: false }), [
    'the boundary supports x64 and arm64 machines (its seccomp filter needs their system call numbers); this is riscv64',
  ]);
});

test('another OS is one problem that says Linux is needed', () => {
  assert.deepEqual(preflightProblems({ ...ready, platform: 'darwin' }, { acl: false }), [
    'the boundary needs Linux (network, mount and PID namespaces, iptables); this is darwin',
  ]);
});

test('every miss is reported at once, each with its fix', () => {
  const problems = preflightProblems(
    {
      ...ready,
      uid: 1001,
      tools: { ...ready.tools, iptables: undefined, useradd: undefined },
      namespaces: ['net', 'mnt', 'ipc'],
    },
    { acl: false },
  );
  assert.deepEqual(problems, [
    'the boundary needs root to create namespaces, users and firewall rules; run it with sudo',
    'iptables is not on PATH; install the iptables package (apt-get install -y iptables)',
    'useradd is not on PATH; install the passwd package (apt-get install -y passwd)',
    'the kernel offers no pid namespace (/proc/self/ns/pid is missing); the boundary cannot isolate the agent here',
  ]);
});

test('write access for the agent needs the acl tools, and only then', () => {
  assert.deepEqual(preflightProblems(ready, { acl: true }), [
    'setfacl is not on PATH; install the acl package (apt-get install -y acl)',
    'getfacl is not on PATH; install the acl package (apt-get install -y acl)',
  ]);
});

test('this machine (CI: Linux, root, tools installed by .ci/run) passes the preflight', async () => {
  const facts = await gatherHostFacts();
  assert.deepEqual(preflightProblems(facts, { acl: true }), [], JSON.stringify(facts));
});

test('tools are looked up on PATH: a PATH without iptables reports both iptables tools', async () => {
  const bin = scratchDir('pe-path-');
  const real = await gatherHostFacts();
  for (const { tool, pkg } of REQUIRED_TOOLS) {
    const path = real.tools[tool];
    if (path && pkg !== 'iptables') symlinkSync(path, join(bin, tool));
  }
  const facts = await gatherHostFacts(bin);
  assert.equal(facts.tools['ip'], join(bin, 'ip'));
  assert.deepEqual(
    preflightProblems(facts, { acl: false }).filter((problem) =>
      problem.includes('is not on PATH'),
    ),
    [
      'iptables is not on PATH; install the iptables package (apt-get install -y iptables)',
      'ip6tables is not on PATH; install the iptables package (apt-get install -y iptables)',
      'iptables-restore is not on PATH; install the iptables package (apt-get install -y iptables)',
      'ip6tables-restore is not on PATH; install the iptables package (apt-get install -y iptables)',
    ],
  );
});

async function run(path: string): Promise<{ code: number; stderr: string }> {
  const workdir = scratchDir('pe-preflight-');
  writeFileSync(join(workdir, 'agent.sh'), 'echo hi\n');
  const saved = process.env['PATH'];
  process.env['PATH'] = path;
  let stderr = '';
  try {
    const code = await main(
      ['run', '--policy', 'fixtures/policies/example.yaml', '--workdir', workdir, '--', 'agent.sh'],
      {
        out: () => undefined,
        err: (text) => (stderr += text),
        readFile: (file) => Promise.resolve(readFileSync(file)),
      },
    );
    return { code, stderr };
  } finally {
    process.env['PATH'] = saved;
  }
}

test('pipelock-egress run: a failed preflight lists every problem and creates nothing (exit 1)', async () => {
  const { code, stderr } = await run(scratchDir('pe-empty-path-'));
  assert.equal(code, 1);
  assert.match(
    stderr,
    /^pipelock-egress run: preflight: ip is not on PATH; install the iproute2 package/,
  );
  assert.match(stderr, /14 preflight problems; nothing was created\n$/);
});
