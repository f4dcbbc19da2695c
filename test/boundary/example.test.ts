// The README's main-job command: the bundled example agent under the example policy, ending in
// evidence that verifies with the pinned key.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { assertNothingLeft, requireBuiltCli, snapshot, type MachineSnapshot } from './harness.js';
import { loadPacketView } from '../../src/packet/view/load-packet.js';
import { parsePublicKey, publicKeyHex } from '../../src/receipts/index.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';

let machine: MachineSnapshot;
beforeEach(() => (machine = snapshot()));
afterEach(() => assertNothingLeft(machine));

test('npm run example: allowed read passes, the forbidden ones are blocked, the packet verifies as valid', async () => {
  requireBuiltCli();
  const run = spawnSync('bash', ['scripts/example.sh'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(run.stdout, /^notes for the agent$/m);
  assert.match(run.stdout, /^blocked: method POST is not allowed/m);
  assert.match(run.stdout, /^blocked: path \/private\/secrets\.txt is outside/m);
  assert.match(run.stdout, /^agent: direct connection failed, as it must$/m);
  assert.doesNotMatch(run.stdout, /private data/);
  assert.match(run.stdout, /^CHAIN VALID: example-output\/packet\/evidence\.jsonl/m);
  // Every file of the packet agrees with the verified chain.
  assert.match(run.stdout, /^PACKET VALID: example-output\/packet$/m);
  assert.equal(run.stdout.match(/^ {2}ok {8}\S/gm)?.length, 11, run.stdout);
  // The chain's session open binds the run the packet states.
  assert.match(
    run.stdout,
    /^ {2}ok {8}packet\.json .*the run \(repository, workflow, commit, agent, script, engine\) as the chain's session open binds it/m,
  );
  const report = JSON.parse(
    readFileSync('example-output/packet/verification-report.json', 'utf8'),
  ) as Record<string, unknown>;
  assert.equal(report['verdict'], 'valid');
  assert.equal(report['receipt_count'], 5);
  // The reference workflow's verify step reads receipts.json with the pinned key.
  const verify = spawnSync(
    process.execPath,
    [
      'dist/cli.js',
      'verify',
      '--receipt-chain',
      'example-output/packet/receipts.json',
      '--policy-hash',
      'example-output/packet/policy-hash.txt',
      '--public-key',
      'example-output/keys/public-key.pem',
    ],
    { encoding: 'utf8' },
  );
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(
    verify.stdout,
    /^CHAIN VALID: example-output\/packet\/receipts\.json\n {2}Receipts: {2}5\n/,
  );
  // What the viewer shows of it: the same.
  const key = parsePublicKey(readFileSync('example-output/keys/public-key.pem', 'utf8'));
  assert.ok(key.ok);
  const view = await loadPacketView('example-output/packet', createNodeBackend(), [
    publicKeyHex(key.key),
  ]);
  assert.equal(view.judgement.verdict, 'valid');
  assert.deepEqual(
    view.checks.filter((c) => c.status !== 'ok').map((c) => [c.file, c.status]),
    [],
  );
  assert.equal(view.rows.length, 5);
});
