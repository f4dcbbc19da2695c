import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recoverRun } from '../../src/boundary/recover.js';
import { scratchDir } from '../scratch.js';

const RUN_ID = 'pe-00000000aa';

const STATE = (runId: string, root: string) => ({
  runId,
  root,
  ip: '/usr/sbin/ip',
  runProcess: { pid: 1, startTime: '1' },
  netnsCreated: false,
  sudoersFile: null,
  createdUsers: [],
  aclGrants: [],
  enginePid: null,
  agentStarted: true,
  evidence: {
    runId,
    evidenceDir: join(root, 'engine', 'evidence'),
    engineLog: join(root, 'engine.log'),
    into: '/tmp/out/evidence',
    engineLogCopy: '/tmp/out/engine.log',
    owner: null,
  },
  evidenceCollected: false,
});

for (const [what, text, problem] of [
  ['cut short', '{"runId":', /is not JSON \(/],
  ['empty', '{}', /is not a run's state \(runId: /],
  [
    'a field of the wrong kind',
    (root: string) => JSON.stringify({ ...STATE(RUN_ID, root), sudoersFile: 7 }),
    /not a run's state \(sudoersFile: /,
  ],
  [
    'another run',
    (root: string) => JSON.stringify(STATE('pe-00000000bb', root)),
    /the state of another run \(pe-00000000bb in /,
  ],
  [
    'another root',
    // Its own directory's parent: teardown would have removed every run's.
    (root: string) => JSON.stringify(STATE(RUN_ID, join(root, '..'))),
    /the state of another run \(pe-00000000aa in \/\S+pe-recover-\w+\)/,
  ],
] as const) {
  test(`a state file ${what} is reported with how to finish by hand; nothing is removed`, async () => {
    const base = scratchDir('pe-recover-');
    const root = join(base, RUN_ID);
    mkdirSync(join(root, 'engine', 'evidence'), { recursive: true });
    writeFileSync(join(root, 'engine', 'evidence', 'evidence-proxy-0.jsonl'), 'kept\n');
    writeFileSync(join(root, 'state.json'), typeof text === 'string' ? text : text(root));
    const failures = await recoverRun(RUN_ID, () => undefined, base);
    assert.equal(failures.length, 1);
    assert.match(failures[0] ?? '', problem);
    assert.match(
      failures[0] ?? '',
      /so nothing was torn down from it\. Copy what you need from .* then undo the run by hand: `ip netns delete pe-00000000aa`, `rm -f \/etc\/sudoers\.d\/pipelock-egress-pe-00000000aa`/,
    );
    assert.ok(existsSync(join(root, 'engine', 'evidence', 'evidence-proxy-0.jsonl')));
    assert.ok(existsSync(join(root, 'state.json')));
  });
}
