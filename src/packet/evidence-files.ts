// The run's evidence files (`evidence/`, the recorder files of its one session), read one at a
// time: together they may hold a gigabyte, which is never in memory at once.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  evidenceFileOrder,
  MAX_SHARDS,
  readEvidenceDirectory,
  type Receipt,
} from '../receipts/index.js';
import { ChainTally, type ChainSummary } from './summarize.js';

export interface EvidenceSummary {
  /** The receipts counted; none when the files do not read as one chain's evidence. */
  readonly summary: ChainSummary;
  readonly readable: boolean;
}

/**
 * Summarises the files in order; `each` is given every file's bytes and, while all before it
 * read as evidence, its receipts (undefined from the first file that does not on: what is
 * wrong with it is verification's to say, and nothing of such evidence is counted).
 */
export async function summarizeEvidence(
  dir: string,
  each: (bytes: Buffer, receipts: readonly Receipt[] | undefined) => Promise<void> = async () => {},
): Promise<EvidenceSummary> {
  const names = evidenceFileOrder(await readdir(dir));
  let tally = new ChainTally();
  // More files than a chain's evidence may span (Pipelock's reader limit) is not evidence.
  let readable = names.length <= MAX_SHARDS;
  for (const name of names) {
    const bytes = await readFile(join(dir, name));
    const read = readable ? readEvidenceDirectory([{ name, content: bytes }]) : undefined;
    if (read?.ok === false) readable = false;
    const receipts = read?.ok ? read.value.receipts : undefined;
    for (const receipt of receipts ?? []) tally.add(receipt);
    await each(bytes, receipts);
  }
  if (!readable) tally = new ChainTally();
  return { summary: tally.summary(), readable };
}
