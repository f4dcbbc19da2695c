// The engine's privilege drop is read back once it is ready: a setpriv that forgets part of it
// (here, emptying the engine's bounding set) stops the run before the agent starts.
import { afterEach, beforeEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertNothingLeft,
  requireBuiltCli,
  runAgent,
  snapshot,
  type MachineSnapshot,
} from './harness.js';
import { scratchDir } from '../scratch.js';

let machine: MachineSnapshot;
before(() => requireBuiltCli());
beforeEach(() => (machine = snapshot()));
afterEach(() => assertNothingLeft(machine));

test('an engine left holding a capability stops the run before the agent starts, and it tears down', async () => {
  const realSetpriv = execFileSync('bash', ['-c', 'command -v setpriv'], {
    encoding: 'utf8',
  }).trim();
  // In the working directory: the probes and the agent start through it inside the boundary,
  // where the host's /tmp is out of sight.
  const workdir = scratchDir('pe-setpriv-shim-');
  chmodSync(workdir, 0o755);
  writeFileSync(
    join(workdir, 'setpriv'),
    `#!/bin/bash
# setpriv, but for the engine (a command line with "proxy") the bounding set is left as it is.
engine=0
for arg in "$@"; do [ "$arg" = proxy ] && engine=1; done
args=()
for arg in "$@"; do
  [ "$engine" = 1 ] && [ "$arg" = --bounding-set=-all ] && continue
  args+=("$arg")
done
exec ${realSetpriv} "\${args[@]}"
`,
    { mode: 0o755 },
  );
  const run = await runAgent({
    script: 'echo the agent started\n',
    policy: 'version: "1.0"\negress: []\n',
    workdir,
    env: { PATH: `${workdir}:${process.env['PATH'] ?? ''}` },
  });
  assert.equal(run.code, 1, run.stderr);
  assert.match(
    run.stderr,
    /boundary failed: the engine \(pid \d+\) did not drop its privileges to pipelock-host: CapBnd is [0-9a-f]*[1-9a-f][0-9a-f]*; expected none/,
  );
  assert.doesNotMatch(run.stdout, /the agent started/);
});
