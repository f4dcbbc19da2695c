// Reading back a chain the engine left behind (a crash, a kill), so a new engine can continue
// it: the last line the old writer did not finish is moved aside (kept, never deleted), the
// rest must verify under the signing key, and the tail state to link to is returned.

import {
  closeSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  EvidenceStream,
  EvidenceVerifier,
  evidenceFileOrder,
  parseEntryLine,
  type CryptoBackend,
} from '../receipts/index.js';

export interface ChainTail {
  readonly finalSeq: bigint;
  readonly rootHash: string;
  readonly receiptCount: number;
  readonly startTime: string;
  /** The last recorder entry, which the next one links to. */
  readonly entry: { readonly seq: bigint; readonly hash: string };
  /** Where the bytes of an unfinished last line were moved, if there were any. */
  readonly tornFile: string | undefined;
}

/** The evidence files of the `proxy` session in `dir`, in chain order. */
export function evidenceFiles(dir: string): string[] {
  return evidenceFileOrder(readdirSync(dir));
}

export function readChainTail(dir: string, backend: CryptoBackend, signerKey: string): ChainTail {
  const names = evidenceFiles(dir);
  const last = names.at(-1);
  if (last === undefined) throw new Error(`${dir} holds no evidence to continue`);
  const tornFile = setTornLineAside(dir, last);
  const verifier = new EvidenceVerifier(backend, { trustedKeys: [signerKey], wholeRecorder: true });
  for (const name of names) {
    const stream = new EvidenceStream(verifier, name, 'lines');
    stream.write(readFileSync(join(dir, name)));
    stream.end();
  }
  const report = verifier.finish();
  const refuse = (why: string) =>
    new Error(`cannot continue the chain in ${dir}: ${why}; start a new evidence directory`);
  if (!report.valid)
    throw refuse(
      `it does not verify under key ${signerKey} (${report.error?.message ?? 'invalid'})`,
    );
  if (report.sealed) throw refuse('it is sealed (a sealed chain is final)');
  if (report.segments.length > 1) throw refuse('its signing key was rotated');
  if (
    report.final_seq === undefined ||
    report.root_hash === undefined ||
    report.start_time === undefined
  ) {
    throw refuse('it holds no receipts');
  }
  const lines = readFileSync(join(dir, last), 'utf8').split('\n');
  const entry = parseEntryLine(lines.at(-2) ?? '');
  if (!entry.ok) throw refuse(`its last entry cannot be read (${entry.failure.message})`);
  return {
    finalSeq: report.final_seq,
    rootHash: report.root_hash,
    receiptCount: report.receipt_count,
    startTime: report.start_time,
    entry: { seq: entry.value.seq, hash: entry.value.hash },
    tornFile,
  };
}

/** Moves an unfinished last line into `<file>.torn-<n>` and cuts the file after its last "\n". */
function setTornLineAside(dir: string, name: string): string | undefined {
  const path = join(dir, name);
  const content = readFileSync(path);
  const end = content.lastIndexOf(0x0a) + 1;
  if (end === content.length) return undefined;
  for (let n = 1; ; n++) {
    const aside = `${name}.torn-${n}`;
    try {
      writeFileSync(join(dir, aside), content.subarray(end), { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, end);
    } finally {
      closeSync(fd);
    }
    return aside;
  }
}
