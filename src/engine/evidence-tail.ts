// Reading back a chain the engine left behind (a crash, a kill), so a new engine can continue
// it: the rest must verify under the signing key, and only then is the last line the old writer
// did not finish moved aside (kept, never deleted), and a file it had only begun removed; the
// tail state to link to is returned.

import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  type Stats,
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
  const lastName = names.at(-1);
  if (lastName === undefined) throw new Error(`${dir} holds no evidence to continue`);
  const refuse = (why: string) =>
    new Error(`cannot continue the chain in ${dir}: ${why}; start a new evidence directory`);
  const read = (name: string): EvidenceFile => {
    const file = readEvidenceFile(join(dir, name));
    if (typeof file === 'string') throw refuse(file);
    return file;
  };
  const last = read(lastName);
  // A file the old engine died in before finishing its first line holds nothing of the chain
  // (and is named for the entry the next engine starts at): the file before it is continued.
  const unbegun = whole(last.content) === 0;
  const chainNames = unbegun ? names.slice(0, -1) : names;
  const verifier = new EvidenceVerifier(backend, { trustedKeys: [signerKey], wholeRecorder: true });
  let tail: Buffer | undefined;
  for (const name of chainNames) {
    const file = name === lastName ? last : read(name);
    // An unfinished last line is judged as set aside: nothing is changed before all is checked.
    tail = name === lastName ? file.content.subarray(0, whole(file.content)) : file.content;
    const stream = new EvidenceStream(verifier, name, 'lines');
    stream.write(tail);
    stream.end();
  }
  if (tail === undefined) throw refuse('it holds no receipts');
  const report = verifier.finish();
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
  const entry = parseEntryLine(tail.toString('utf8').split('\n').at(-2) ?? '');
  if (!entry.ok) throw refuse(`its last entry cannot be read (${entry.failure.message})`);
  const tornFile =
    whole(last.content) === last.content.length ? undefined : setTornLineAside(dir, lastName, last);
  if (unbegun) unlinkSync(join(dir, lastName));
  return {
    finalSeq: report.final_seq,
    rootHash: report.root_hash,
    receiptCount: report.receipt_count,
    startTime: report.start_time,
    entry: { seq: entry.value.seq, hash: entry.value.hash },
    tornFile,
  };
}

interface EvidenceFile {
  readonly content: Buffer;
  readonly stats: Stats;
}

/** The length of the content's complete lines. */
function whole(content: Buffer): number {
  return content.lastIndexOf(0x0a) + 1;
}

/**
 * An evidence file the engine may have written: a regular file of its own, not a symlink or a
 * second name of another file (which cutting a torn line would cut). A problem as text.
 */
function readEvidenceFile(path: string): EvidenceFile | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ELOOP'
      ? `${path} is a symbolic link, not evidence the engine wrote`
      : `${path} cannot be read: ${(error as Error).message}`;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return `${path} is not a regular file`;
    if (stats.nlink !== 1) return `${path} has other names (hard links): it is not only evidence`;
    return { content: readFileSync(fd), stats };
  } finally {
    closeSync(fd);
  }
}

/** Moves an unfinished last line into `<file>.torn-<n>` and cuts the file after its last "\n". */
function setTornLineAside(dir: string, name: string, file: EvidenceFile): string {
  const path = join(dir, name);
  const end = whole(file.content);
  for (let n = 1; ; n++) {
    const aside = `${name}.torn-${n}`;
    try {
      writeFileSync(join(dir, aside), file.content.subarray(end), { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      const now = fstatSync(fd);
      if (now.ino !== file.stats.ino || now.dev !== file.stats.dev || now.size !== file.stats.size)
        throw new Error(`${path} changed while it was checked; start a new evidence directory`);
      ftruncateSync(fd, end);
    } finally {
      closeSync(fd);
    }
    return aside;
  }
}
