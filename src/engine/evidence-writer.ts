// The engine's evidence file: every decision becomes a signed receipt appended to a
// Pipelock flight-recorder JSONL file before the request goes anywhere.
//
// Durability policy: each recorder entry is handed to the kernel with one write(2) of the
// whole line, synchronously, before `append` resolves, so a crash of the engine process can
// lose nothing that was acknowledged and can never split a line. fsync(2) runs on a short
// interval (default 100 ms) and at seal, so the hot path never waits on the disk; a crash
// of the whole machine may lose at most that interval, and the chain left behind is still a
// verifiable prefix. A failed write makes every later append fail: the engine then refuses
// traffic (fail closed).

import {
  closeSync,
  constants,
  fsync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  MAX_SHARD_BYTES,
  MAX_SHARDS,
  ReceiptChainBuilder,
  RecorderWriter,
  goTimestamp,
  publicKeyHex,
  type BuiltReceipt,
  type CryptoBackend,
  type ReceiptFields,
} from '../receipts/index.js';
import { readChainTail, type ChainTail } from './evidence-tail.js';
import {
  receiptFields,
  type DecisionEntry,
  type DecisionLog,
  type RunContext,
} from './decision-log.js';

export const RECORDER_SESSION = 'proxy';

/**
 * What sealing may write after the last receipt, at most, line by line: the checkpoint that
 * receipt may bring, the session close, the transcript root and the final checkpoint. Each
 * fits in 4 KiB (their fields are fixed; the tests measure them).
 */
const SEAL_LINES = [4096, 4096, 4096, 4096];

/**
 * The evidence holds as many files as a verifier reads (MAX_SHARDS) and the last has no room
 * left for another receipt: the decision cannot be recorded, so it may not be acted on.
 */
export class EvidenceFull extends Error {}

export interface EvidenceWriterOptions {
  /** Created (0700) if absent; must not already hold evidence. */
  readonly dir: string;
  readonly backend: CryptoBackend;
  /** 32-byte Ed25519 seed that signs receipts and checkpoints. */
  readonly seed: Uint8Array;
  readonly run: RunContext;
  readonly maxEntriesPerFile?: number;
  /**
   * A file is rotated before it would grow past this many bytes (default 4 MiB); verifiers
   * refuse evidence files larger than MAX_SHARD_BYTES (8 MiB), so this may not exceed it.
   */
  readonly maxBytesPerFile?: number;
  /**
   * Evidence files a session may have, those of a chain it continues included (default and
   * most: MAX_SHARDS, what verifiers read). Beyond the last one's room, appends are refused
   * with EvidenceFull; sealing still fits.
   */
  readonly maxFiles?: number;
  readonly checkpointInterval?: number;
  readonly fsyncIntervalMs?: number;
  readonly now?: () => Date;
}

export interface SealSummary {
  readonly receiptCount: number;
  readonly finalSeq: bigint;
  readonly rootHash: string;
  readonly files: readonly string[];
}

/** Where the evidence ends: the files begun, and the length of the last of them. */
interface EvidenceEnd {
  readonly files: number;
  /** Undefined: the last file as it is (complete lines only). */
  readonly bytes: number | undefined;
}

export class EvidenceWriter implements DecisionLog {
  private readonly builder: ReceiptChainBuilder;
  private readonly recorder: RecorderWriter;
  private readonly now: () => Date;
  private readonly maxEntriesPerFile: number;
  private readonly maxBytesPerFile: number;
  private readonly maxFiles: number;
  private readonly checkpointInterval: number;
  private readonly fsyncTimer: NodeJS.Timeout;
  private readonly files: string[] = [];
  /** The file each name was made as, and its length: one removed, replaced or cut is evidence lost. */
  private readonly fileIds = new Map<string, WrittenFile>();
  private currentFile: WrittenFile | undefined;
  private fd = -1;
  private entriesInFile = 0;
  /** Bumped whenever the current file is closed: an fsync started on an older file is stale. */
  private fileGeneration = 0;
  private entriesSinceCheckpoint = 0;
  private recorderSeq = 0n;
  private dirty = false;
  private failure: Error | undefined;
  private sealed = false;
  /** Receipts of the chain this writer continues. */
  private readonly receiptsBefore: number;
  private receiptCount = 0;
  private firstReceiptTime = '';
  private lastReceipt: BuiltReceipt | undefined;

  private constructor(
    private readonly options: EvidenceWriterOptions,
    tail: ChainTail | undefined,
    /** Evidence files the directory held already (a chain this run continues). */
    private readonly filesBefore: number,
  ) {
    const { backend, seed } = options;
    this.builder = tail
      ? ReceiptChainBuilder.resume(backend, seed, tail)
      : new ReceiptChainBuilder(backend, seed);
    this.recorder = new RecorderWriter(backend, RECORDER_SESSION, seed, tail?.entry);
    this.recorderSeq = tail ? tail.entry.seq + 1n : 0n;
    this.receiptsBefore = tail?.receiptCount ?? 0;
    this.receiptCount = this.receiptsBefore;
    this.firstReceiptTime = tail?.startTime ?? '';
    this.now = options.now ?? (() => new Date());
    this.maxEntriesPerFile = options.maxEntriesPerFile ?? 10_000;
    this.maxBytesPerFile = Math.min(options.maxBytesPerFile ?? 4 * 1024 * 1024, MAX_SHARD_BYTES);
    this.maxFiles = maxFilesOf(options);
    this.checkpointInterval = options.checkpointInterval ?? 1_000;
    this.fsyncTimer = setInterval(() => this.flushSoon(), options.fsyncIntervalMs ?? 100);
    this.fsyncTimer.unref();
  }

  /**
   * Opens the evidence in `dir` and starts a run with a signed session open. An empty
   * directory gets a new chain (bound `g1:` genesis). A chain left unsealed by a crash is
   * continued in a new file, with a restart session open bound to its last receipt, after
   * its unfinished last line (if any) is set aside; it must verify under this key. A sealed
   * or broken chain is refused.
   */
  static open(options: EvidenceWriterOptions): {
    writer: EvidenceWriter;
    resumed: ChainTail | undefined;
  } {
    const notADirectory = new Error(
      `evidence directory ${options.dir} is not a directory (or a path to it is a file); give a directory, or a path to make one at`,
    );
    try {
      mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') throw notADirectory;
      throw error;
    }
    const dir = statSync(options.dir);
    if (!dir.isDirectory()) throw notADirectory;
    const uid = process.getuid?.();
    const unsafe =
      dir.uid !== uid
        ? `is owned by uid ${dir.uid}, not this user (uid ${uid ?? '?'})`
        : (dir.mode & 0o022) !== 0
          ? `is writable by other users (mode ${(dir.mode & 0o777).toString(8)})`
          : undefined;
    if (unsafe !== undefined) {
      throw new Error(
        `evidence directory ${options.dir} ${unsafe}: they could remove or replace evidence files, or plant links where the engine writes; use a directory only this user owns and can write (chmod go-w)`,
      );
    }
    const existing = evidenceNames(options.dir);
    const signerKey = publicKeyHex(options.backend.ed25519PublicKey(options.seed));
    let resumed: ChainTail | undefined;
    if (existing.length >= maxFilesOf(options))
      throw new Error(
        `evidence directory ${options.dir} already holds ${existing.length} evidence files, as many as a verifier reads: its chain cannot be continued (move them away)`,
      );
    if (existing.length > 0) {
      try {
        resumed = readChainTail(options.dir, options.backend, signerKey);
      } catch (error) {
        throw new Error(
          `evidence directory ${options.dir} already holds ${existing.join(', ')}: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const writer = new EvidenceWriter(
      options,
      resumed,
      // What is left once a file the old engine had only begun is removed.
      resumed === undefined ? 0 : evidenceNames(options.dir).length,
    );
    try {
      const nonce = () => randomBytes(16).toString('hex');
      const time = goTimestamp(writer.now());
      writer.commit(
        writer.builder.openSession(writer.sessionFields('open', time), {
          run_nonce: nonce(),
          open_nonce: nonce(),
          recorder_session: RECORDER_SESSION,
          policy_hash: options.run.policyHash,
          signer_key_epoch: signerKey,
          heartbeat_seconds: 0n,
          ...(options.run.postureCapsuleSha256 === undefined
            ? {}
            : { posture_capsule_sha256: options.run.postureCapsuleSha256 }),
        }),
        time,
      );
    } catch (error) {
      writer.abandon();
      throw error;
    }
    return { writer, resumed };
  }

  /** The public key (64 hex) that signs this chain. */
  get signerKey(): string {
    return this.builder.signerKey;
  }

  append(entry: DecisionEntry): Promise<void> {
    try {
      // Checked before anything is signed: a receipt built and then not written would leave
      // the chain state ahead of the file.
      this.ensureRoomFor(entry);
      const time = goTimestamp(this.now());
      this.commit(this.builder.append(receiptFields(entry, this.options.run, time)), time);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Seals the chain: a signed session close (final seq, root hash, count), the transcript
   * root and a signed checkpoint, then fsync. Nothing can be appended afterwards.
   */
  seal(reason = 'normal'): SealSummary {
    const lost = this.lostFile();
    if (lost !== undefined) throw new Error(lost);
    const time = goTimestamp(this.now());
    // A seal written in part (a session close without its transcript root) would read as
    // sealed to some verifiers and broken to others: one that fails is cut off whole, leaving
    // the unsealed chain it was, which the next engine can continue and seal.
    const unsealed: EvidenceEnd = { files: this.files.length, bytes: this.bytesInFile };
    let last: BuiltReceipt | undefined;
    try {
      this.commit(
        this.builder.close(this.sessionFields('close', time), { close_reason: reason }),
        time,
      );
      last = this.lastReceipt;
      if (last === undefined) throw new Error('unreachable: a sealed chain has receipts');
      this.writeEntry(
        this.recorder.appendTranscriptRoot(time, {
          finalSeq: last.receipt.action_record.chain_seq,
          rootHash: last.hash,
          receiptCount: this.receiptCount,
          startTime: this.firstReceiptTime,
          endTime: time,
        }),
      );
      this.writeCheckpoint(time);
    } catch (error) {
      this.cutBackTo(unsealed);
      throw error;
    }
    this.sealed = true;
    this.closeFile();
    clearInterval(this.fsyncTimer);
    return {
      receiptCount: this.receiptCount,
      finalSeq: last.receipt.action_record.chain_seq,
      rootHash: last.hash,
      files: [...this.files],
    };
  }

  /** Stops without sealing (the chain stays a verifiable, unsealed prefix). */
  abandon(): void {
    clearInterval(this.fsyncTimer);
    this.closeFile();
  }

  /**
   * Takes back a start that failed before any traffic (the listener could not be opened):
   * the files this writer began, which hold only its session open, are removed, so the
   * directory is as it was (a chain it was to continue can still be continued).
   */
  withdraw(): void {
    if (this.receiptCount !== this.receiptsBefore + 1)
      throw new Error('a writer that recorded traffic is sealed or abandoned, never withdrawn');
    clearInterval(this.fsyncTimer);
    this.cutBackTo({ files: 0, bytes: undefined });
  }

  /**
   * Throws EvidenceFull unless this receipt, and then everything sealing writes, fit in the
   * files the session may have: a full chain still seals.
   */
  private ensureRoomFor(entry: DecisionEntry): void {
    let files = this.filesBefore + this.files.length;
    // Room for a file per line: nothing to work out.
    if (files + 1 + SEAL_LINES.length <= this.maxFiles) return;
    // Every string of the receipt at its longest escaped spelling (6 bytes per code unit, as
    // `\u2028`), on top of what every receipt line holds whatever it records.
    const { actor, policyHash } = this.options.run;
    const { target, pattern = '', method, requestId, actionId } = entry;
    const text = [target, pattern, method, requestId, actionId, actor, policyHash];
    const length = text.reduce((sum, part) => sum + part.length, 0);
    let open = this.fd >= 0;
    let entries = this.entriesInFile;
    let bytes = this.bytesInFile;
    for (const size of [4096 + 6 * length, ...SEAL_LINES]) {
      if (!open || this.startsNewFile(entries, bytes, size)) {
        files++;
        open = true;
        entries = 0;
        bytes = 0;
      }
      entries++;
      bytes += size;
    }
    if (files > this.maxFiles)
      throw new EvidenceFull(
        `the evidence is full (${this.maxFiles} files, as many as a verifier reads); what it holds stays verifiable and is sealed at the end`,
      );
  }

  /** Whether a line of `size` bytes goes into a new file, after `entries` lines of `bytes`. */
  private startsNewFile(entries: number, bytes: number, size: number): boolean {
    return (
      entries >= this.maxEntriesPerFile || (entries > 0 && bytes + size > this.maxBytesPerFile)
    );
  }

  private sessionFields(kind: 'open' | 'close', timestamp: string): ReceiptFields {
    return {
      action_id: randomBytes(16).toString('hex'),
      action_type: 'unclassified',
      timestamp,
      principal: 'local',
      actor: 'pipelock',
      delegation_chain: null,
      target: `pipelock://session/${kind}`,
      side_effect_class: 'none',
      reversibility: 'full',
      policy_hash: this.options.run.policyHash,
      verdict: 'allow',
      transport: 'receipt_session',
      layer: 'session_control',
    };
  }

  private commit(built: BuiltReceipt, time: string): void {
    this.writeEntry(this.recorder.appendReceipt(built, time));
    if (this.receiptCount === 0) this.firstReceiptTime = time;
    this.receiptCount++;
    this.lastReceipt = built;
    if (++this.entriesSinceCheckpoint >= this.checkpointInterval) this.writeCheckpoint(time);
  }

  private writeCheckpoint(time: string): void {
    const line = this.recorder.appendCheckpoint(time);
    if (line !== '') this.writeEntry(line);
    this.entriesSinceCheckpoint = 0;
  }

  private writeEntry(line: string): void {
    if (this.failure) throw new Error(`evidence cannot be written: ${this.failure.message}`);
    if (this.sealed) throw new Error('evidence is sealed; nothing can be appended');
    const bytes = Buffer.from(line, 'utf8');
    try {
      let file = this.currentFile;
      if (
        file === undefined ||
        this.fd < 0 ||
        this.startsNewFile(this.entriesInFile, file.size, bytes.length)
      )
        file = this.startFile();
      // One write, unless the disk takes only part of it: writing the rest then says why not
      // (ENOSPC, EFBIG), or finishes the line.
      for (let written = 0; written < bytes.length;) written += writeSync(this.fd, bytes, written);
      this.entriesInFile++;
      file.size += bytes.length;
      this.recorderSeq++;
      this.dirty = true;
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      // What is on disk stays a verifiable prefix: the part of the line written is cut off, and
      // a file begun for it, holding no line, goes (the next engine would find it unreadable).
      this.cutBackTo(
        this.bytesInFile === 0
          ? { files: this.files.length - 1, bytes: undefined }
          : { files: this.files.length, bytes: this.bytesInFile },
      );
      throw new Error(`evidence cannot be written: ${this.failure.message}`, { cause: error });
    }
  }

  private startFile(): WrittenFile {
    this.closeFile();
    const name = `evidence-${RECORDER_SESSION}-${this.recorderSeq}.jsonl`;
    // Appending: a file cut or written to by something else then keeps a size unlike what the
    // engine wrote, which the check on every tick sees (at an offset, the next write would
    // fill the gap back up).
    this.fd = openSync(join(this.options.dir, name), 'ax', 0o600);
    const { dev, ino } = fstatSync(this.fd);
    const file: WrittenFile = { dev, ino, size: 0 };
    this.currentFile = file;
    this.fileIds.set(name, file);
    this.files.push(name);
    this.entriesInFile = 0;
    return file;
  }

  /** The bytes written to the file being written. */
  private get bytesInFile(): number {
    return this.currentFile?.size ?? 0;
  }

  /**
   * Cuts the evidence back to where it ended before a failed write (a full disk): files begun
   * since are removed, and the last file then is cut to its length then.
   */
  private cutBackTo(end: EvidenceEnd): void {
    try {
      const begun = this.files.splice(end.files);
      if (begun.length > 0) {
        this.closeFile(false);
        for (const name of begun) {
          unlinkSync(join(this.options.dir, name));
          this.fileIds.delete(name);
        }
      }
      const last = this.files.at(-1);
      if (last === undefined || end.bytes === undefined) return;
      const written = this.fileIds.get(last);
      if (written) written.size = end.bytes;
      if (this.fd >= 0) {
        ftruncateSync(this.fd, end.bytes);
        return;
      }
      const fd = openSync(join(this.options.dir, last), constants.O_WRONLY | constants.O_NOFOLLOW);
      try {
        ftruncateSync(fd, end.bytes);
      } finally {
        closeSync(fd);
      }
    } catch {
      // The writer has failed already; a verifier reports whatever is left.
    }
  }

  /** Closes the file being written, synced first unless what it holds is being cut away. */
  private closeFile(sync = true): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    this.fileGeneration++;
    try {
      if (sync && this.dirty) fsyncSync(fd);
    } finally {
      closeSync(fd);
      this.dirty = false;
    }
  }

  /** Why a file this writer made (of `names`) is no longer at its name as written, if one is not. */
  private lostFile(names: Iterable<string> = this.fileIds.keys()): string | undefined {
    for (const name of names) {
      const id = this.fileIds.get(name);
      if (id === undefined) continue;
      let now: Stats | undefined;
      try {
        now = lstatSync(join(this.options.dir, name), { throwIfNoEntry: false });
      } catch (error) {
        // The directory replaced by a file, or made unreadable: the file is out of reach too.
        return `${name} in ${this.options.dir} cannot be looked at any more (${(error as Error).message}): the evidence there is not whole`;
      }
      if (now?.dev !== id.dev || now.ino !== id.ino)
        return `${name} was removed or replaced in ${this.options.dir} while the engine wrote it: the evidence there is not whole`;
      if (now.size !== id.size)
        return `${name} in ${this.options.dir} holds ${now.size} bytes where the engine wrote ${id.size}: something else cut or wrote it, and the evidence there is not whole`;
    }
    return undefined;
  }

  private flushSoon(): void {
    // The file being written, on every tick: appends fail (and requests are refused) once it
    // is lost. Files rotated away are checked at seal.
    const current = this.files.at(-1);
    const lost =
      this.failure === undefined && current !== undefined ? this.lostFile([current]) : undefined;
    if (lost !== undefined) this.failure = new Error(lost);
    if (!this.dirty || this.fd < 0) return;
    const fd = this.fd;
    const generation = this.fileGeneration;
    this.dirty = false;
    fsync(fd, (error) => {
      // A file rotated or closed meanwhile was synced by closeFile, and its descriptor number
      // may already belong to the next file (EBADF here is stale): only an error on the file
      // still open counts.
      if (error && generation === this.fileGeneration && !this.failure) this.failure = error;
    });
  }
}

interface WrittenFile {
  readonly dev: number;
  readonly ino: number;
  /** The bytes the engine has written to it. */
  size: number;
}

/** Names in the evidence directory that count against its file limit. */
function evidenceNames(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('evidence-'));
}

function maxFilesOf(options: EvidenceWriterOptions): number {
  return Math.min(options.maxFiles ?? MAX_SHARDS, MAX_SHARDS);
}
