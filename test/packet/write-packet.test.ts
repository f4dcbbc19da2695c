import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePacketEvidence } from '../../src/packet/write-packet.js';
import {
  encodeReceipt,
  MAX_SHARDS,
  readEvidenceDirectory,
  type EvidenceFile,
} from '../../src/receipts/index.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { scratchDir } from '../scratch.js';
import {
  SAMPLE_POLICY,
  SAMPLE_POLICY_HASH,
  SAMPLE_SEED,
  sampleEvidence,
} from '../receipts/sample-evidence.js';

const PUBLIC_KEY = createNodeBackend().ed25519PublicKey(SAMPLE_SEED);

/** A run's evidence directory: the sample session's lines in `shards` files. */
function evidenceDir(out: string, decisions: number, shards: number): EvidenceFile[] {
  const lines = [...sampleEvidence(decisions)].map((line) => line.text);
  const per = Math.ceil(lines.length / shards);
  const files = Array.from({ length: shards }, (_, i) => ({
    name: `evidence-proxy-${i * per}.jsonl`,
    content: lines.slice(i * per, (i + 1) * per).join(''),
  }));
  mkdirSync(join(out, 'evidence'));
  for (const { name, content } of files) writeFileSync(join(out, 'evidence', name), content);
  return files;
}

const write = (out: string) =>
  writePacketEvidence({
    out,
    policyBytes: SAMPLE_POLICY,
    policyHash: SAMPLE_POLICY_HASH,
    publicKey: PUBLIC_KEY,
  });

test('the packet evidence is written file by file: evidence.jsonl joins the files, receipts.json holds every receipt as signed', async () => {
  const out = scratchDir('pe-write-packet-');
  const files = evidenceDir(out, 40, 3);
  const summary = await write(out);
  const joined = files.map((file) => file.content).join('');
  assert.equal(readFileSync(join(out, 'evidence.jsonl'), 'utf8'), joined);
  const read = readEvidenceDirectory(files);
  assert.ok(read.ok);
  const receipts = read.value.receipts;
  assert.equal(
    readFileSync(join(out, 'receipts.json'), 'utf8'),
    `[\n${receipts.map((receipt) => encodeReceipt(receipt)).join(',\n')}\n]\n`,
  );
  assert.equal(summary.receiptCount, receipts.length);
  assert.equal(summary.receiptCount, 42);
  assert.equal(readFileSync(join(out, 'policy-hash.txt'), 'utf8'), `${SAMPLE_POLICY_HASH}\n`);
});

test('evidence that does not read as a chain is still joined whole; receipts.json is empty and nothing is counted', async () => {
  const broken = scratchDir('pe-write-packet-');
  const files = evidenceDir(broken, 40, 3);
  const middle = join(broken, 'evidence', files[1]?.name ?? '');
  writeFileSync(middle, `${readFileSync(middle, 'utf8')}not evidence\n`);
  const summary = await write(broken);
  assert.equal(readFileSync(join(broken, 'receipts.json'), 'utf8'), '[]\n');
  assert.equal(summary.receiptCount, 0);
  assert.match(readFileSync(join(broken, 'evidence.jsonl'), 'utf8'), /\nnot evidence\n\{/);

  // More files than one chain's evidence may span is not evidence either.
  const many = scratchDir('pe-write-packet-');
  evidenceDir(many, MAX_SHARDS, MAX_SHARDS + 1);
  assert.equal((await write(many)).receiptCount, 0);
  assert.equal(readFileSync(join(many, 'receipts.json'), 'utf8'), '[]\n');
});
