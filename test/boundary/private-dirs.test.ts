// Which directories the agent gets a fresh tmpfs of, and what of the run's is bound back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agentPrivateDirs,
  hiddenByPrivateDirs,
  unkeptPrivateDir,
} from '../../src/boundary/private-dirs.js';

const RUN_FILES = [
  '/run/pipelock-egress/pe-0123456789/agent',
  '/run/pipelock-egress/pe-0123456789/home',
];
const STAGES = '/run/pipelock-egress/pe-0123456789/stages';

test('private directories: /dev/shm, /var/tmp, /tmp, then /run (the stages are under /run)', () => {
  const dirs = agentPrivateDirs({ stagesDir: STAGES, runFiles: RUN_FILES, visible: ['/home/w'] });
  assert.deepEqual(dirs, [
    { path: '/dev/shm', mode: '1777', stage: '/dev/shm', keep: [] },
    { path: '/var/tmp', mode: '1777', stage: '/var/tmp', keep: [] },
    { path: '/tmp', mode: '1777', stage: '/tmp', keep: [] },
    { path: '/run', mode: '0755', stage: `${STAGES}/run`, keep: RUN_FILES },
  ]);
});

test('a working directory or writable path in a private directory is kept, nested ones once', () => {
  const dirs = agentPrivateDirs({
    stagesDir: STAGES,
    runFiles: RUN_FILES,
    visible: ['/tmp/w', '/tmp/w/out', '/var/tmp/cache', '/tmp/wx', '/tmp'],
  });
  const byPath = new Map(dirs.map((dir) => [dir.path, dir]));
  assert.deepEqual(byPath.get('/tmp'), {
    path: '/tmp',
    mode: '1777',
    stage: `${STAGES}/tmp`,
    keep: ['/tmp/w', '/tmp/wx'],
  });
  assert.deepEqual(byPath.get('/var/tmp')?.keep, ['/var/tmp/cache']);
  assert.equal(byPath.get('/var/tmp')?.stage, `${STAGES}/var-tmp`);
  assert.deepEqual(byPath.get('/dev/shm')?.keep, []);
});

test('hidden: what is in a private directory and not kept; kept paths and the rest are in sight', () => {
  const dirs = agentPrivateDirs({ stagesDir: STAGES, runFiles: RUN_FILES, visible: ['/tmp/w'] });
  for (const path of [
    '/run/docker.sock',
    '/run/pipelock-egress/pe-0123456789/engine',
    '/tmp/x.sock',
    '/tmp/wx',
    '/dev/shm/q',
    '/run',
  ])
    assert.equal(hiddenByPrivateDirs(dirs, path), true, path);
  for (const path of [
    '/tmp/w',
    '/tmp/w/relay.sock',
    `${RUN_FILES[0]}/script`,
    '/var/lib/x.sock',
    '/runner/x',
    '/var/run/docker.sock',
  ])
    assert.equal(hiddenByPrivateDirs(dirs, path), false, path);
});

test('unkept: a private directory itself, or anything under /run; under /tmp is fine', () => {
  assert.equal(unkeptPrivateDir('/tmp'), '/tmp');
  assert.equal(unkeptPrivateDir('/dev/shm'), '/dev/shm');
  assert.equal(unkeptPrivateDir('/run'), '/run');
  assert.equal(unkeptPrivateDir('/run/user/1001/w'), '/run');
  for (const path of ['/tmp/w', '/var/tmp/w', '/home/runner/work', '/', '/runner'])
    assert.equal(unkeptPrivateDir(path), undefined, path);
});
