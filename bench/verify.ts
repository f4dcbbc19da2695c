// verify.receipts_per_s: receipts the built `verify` command checks per second, as a reviewer
// runs it: a 100,000-decision evidence file verified against its pinned key, in a process of
// its own (one core; its start counted in the time).
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { run } from './processes.js';
import { SAMPLE_KEY, sampleEvidence } from '../test/receipts/sample-evidence.js';

const DECISIONS = 100_000;

export async function benchVerify(work: string, decisions = DECISIONS): Promise<number> {
  const file = join(work, 'verify-bench.jsonl');
  const fd = openSync(file, 'wx');
  try {
    for (const line of sampleEvidence(decisions)) writeSync(fd, line.text);
  } finally {
    closeSync(fd);
  }
  const started = performance.now();
  const output = await run(process.execPath, [
    ...['dist/cli.js', 'verify', '--receipt-chain', file, '--public-key', SAMPLE_KEY],
  ]);
  const seconds = (performance.now() - started) / 1000;
  const receipts = Number(/^ {2}Receipts: +(\d+)$/m.exec(output)?.[1]);
  if (!output.startsWith('CHAIN VALID') || !(receipts >= decisions))
    throw new Error(`the bench chain did not verify whole:\n${output}`);
  return receipts / seconds;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const work = await mkdtemp(join(tmpdir(), 'pe-bench-verify-'));
  try {
    const rate = await benchVerify(work);
    console.log(`verify.receipts_per_s ${Math.round(rate)} (${DECISIONS} decisions, one core)`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
