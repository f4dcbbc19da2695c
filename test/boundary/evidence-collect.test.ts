import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { collectEvidence, type EvidenceCollection } from '../../src/boundary/evidence-collect.js';
import { scratchDir } from '../scratch.js';

const RUN_ID = 'pe-0123456789';

/** A run directory holding the engine's evidence and log, and an empty place to copy them. */
function runFiles(owner: EvidenceCollection['owner'] = null): EvidenceCollection {
  const root = scratchDir('collect-');
  const evidenceDir = join(root, 'run', 'evidence');
  mkdirSync(evidenceDir, { recursive: true });
  writeFileSync(join(evidenceDir, 'evidence-proxy-0.jsonl'), 'first\n');
  writeFileSync(join(evidenceDir, 'evidence-proxy-7.jsonl'), 'second\n');
  writeFileSync(join(root, 'run', 'engine.log'), 'log\n');
  const out = join(root, 'out');
  mkdirSync(out);
  return {
    runId: RUN_ID,
    evidenceDir,
    engineLog: join(root, 'run', 'engine.log'),
    into: join(out, 'evidence'),
    engineLogCopy: join(out, 'engine.log'),
    owner,
  };
}

function assertCopied(collection: EvidenceCollection): void {
  assert.deepEqual(readdirSync(collection.into).sort(), [
    'evidence-proxy-0.jsonl',
    'evidence-proxy-7.jsonl',
  ]);
  assert.equal(readFileSync(join(collection.into, 'evidence-proxy-7.jsonl'), 'utf8'), 'second\n');
  assert.equal(readFileSync(collection.engineLogCopy, 'utf8'), 'log\n');
}

const outEntries = (collection: EvidenceCollection): string[] =>
  readdirSync(join(collection.into, '..')).sort();

test('the evidence and the engine log are copied out, and given to the invoker with their directory', async () => {
  const collection = runFiles({ uid: 4242, gid: 4343 });
  assert.equal(await collectEvidence(collection), undefined);
  assertCopied(collection);
  assert.deepEqual(outEntries(collection), ['engine.log', 'evidence']);
  const out = join(collection.into, '..');
  for (const path of [
    out,
    collection.into,
    collection.engineLogCopy,
    join(collection.into, 'evidence-proxy-0.jsonl'),
  ]) {
    const { uid, gid } = statSync(path);
    assert.deepEqual([uid, gid], [4242, 4343], path);
  }
});

test('a collection killed part way is done again from the start, nothing taken for planted', async () => {
  const collection = runFiles();
  // What a collection killed while copying leaves: its copies beside their places.
  mkdirSync(`${collection.into}.collecting-${RUN_ID}`);
  writeFileSync(join(`${collection.into}.collecting-${RUN_ID}`, 'evidence-proxy-0.jsonl'), 'fir');
  writeFileSync(`${collection.engineLogCopy}.collecting-${RUN_ID}`, 'lo');
  assert.equal(await collectEvidence(collection), undefined);
  assertCopied(collection);
  assert.deepEqual(outEntries(collection), ['engine.log', 'evidence']);
});

test('files put where the copies go are moved aside, each time to a new name', async () => {
  const collection = runFiles();
  for (const round of [1, 2]) {
    mkdirSync(collection.into, { recursive: true });
    writeFileSync(join(collection.into, 'receipts.jsonl'), `planted ${round}\n`);
    symlinkSync('/etc/shadow', collection.engineLogCopy);
    const warning = await collectEvidence(collection);
    const suffix = round === 1 ? RUN_ID : `${RUN_ID}-2`;
    assert.match(
      warning ?? '',
      new RegExp(`evidence appeared during the run; moved to \\S+evidence\\.during-${suffix}`),
    );
    assert.match(
      warning ?? '',
      new RegExp(
        `engine\\.log appeared during the run; moved to \\S+engine\\.log\\.during-${suffix}`,
      ),
    );
    assertCopied(collection);
    assert.equal(
      readFileSync(join(`${collection.into}.during-${suffix}`, 'receipts.jsonl'), 'utf8'),
      `planted ${round}\n`,
    );
    // The engine's copies of round 1 go aside in round 2 too: nothing is ever removed.
    if (round === 1) {
      rmSync(collection.into, { recursive: true });
      rmSync(collection.engineLogCopy);
    }
  }
  assert.equal(readFileSync('/etc/shadow').length > 0, true);
});

test('an empty directory made where the evidence goes is simply replaced', async () => {
  const collection = runFiles();
  mkdirSync(collection.into);
  assert.equal(await collectEvidence(collection), undefined);
  assertCopied(collection);
});
