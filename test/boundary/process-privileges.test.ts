import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { privilegeProblems } from '../../src/boundary/process-privileges.js';
import { withoutPrivileges } from '../../src/boundary/setpriv.js';

const NOBODY = 65534;

function statusOfStarted(command: readonly string[]): { status: string; stop: () => void } {
  const [file = '', ...args] = command;
  const child = spawn(file, args, { stdio: 'ignore' });
  if (child.pid === undefined) throw new Error(`${file} did not start`);
  // Read once the exec into sleep has happened (its command line says so).
  const deadline = Date.now() + 5_000;
  while (!readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').startsWith('sleep')) {
    if (Date.now() > deadline) throw new Error(`${file} never became sleep`);
  }
  return { status: readFileSync(`/proc/${child.pid}/status`, 'utf8'), stop: () => child.kill() };
}

test('a process started through setpriv without privileges has none, by its /proc status', () => {
  const started = statusOfStarted([
    'setpriv',
    ...withoutPrivileges(NOBODY, NOBODY),
    '--',
    'sleep',
    '30',
  ]);
  try {
    assert.deepEqual(privilegeProblems(started.status, NOBODY, NOBODY), []);
    // The same process is not the one another account asks for.
    assert.match(privilegeProblems(started.status, 1000, NOBODY).join('\n'), /^Uid is /);
  } finally {
    started.stop();
  }
});

test('a process with root, capabilities and a way back to privileges is named for each', () => {
  assert.equal(process.getuid?.(), 0, 'run as root');
  const started = statusOfStarted(['sleep', '30']);
  try {
    const problems = privilegeProblems(started.status, NOBODY, NOBODY);
    for (const expected of [
      /^Uid is 0\s+0\s+0\s+0; /,
      /^Gid is /,
      /^CapEff is 0*[1-9a-f]/,
      /^CapBnd is /,
      /^NoNewPrivs is 0$/,
    ])
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `${expected} in ${problems.join('; ')}`,
      );
  } finally {
    started.stop();
  }
});

test('a status that says nothing is no proof: every field is missing', () => {
  assert.deepEqual(privilegeProblems('', NOBODY, NOBODY), [
    'Uid is (missing); expected 65534 for all four',
    'Gid is (missing); expected 65534 for all four',
    'Groups is (missing); expected none',
    'CapInh is (missing); expected none',
    'CapPrm is (missing); expected none',
    'CapEff is (missing); expected none',
    'CapBnd is (missing); expected none',
    'CapAmb is (missing); expected none',
    'NoNewPrivs is (missing)',
  ]);
});
