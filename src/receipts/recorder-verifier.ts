// The recorder layer around a receipt chain (`--whole-recorder`), checked entry by entry: the
// entry hash chain, checkpoint spans and signatures, and the transcript_root that seals the chain.
import { fromHex } from './bytes.js';
import type { ChainVerifier } from './chain.js';
import type { CryptoBackend } from './crypto.js';
import type { Outcome } from './failure.js';
import { fail, goQuote } from './failure.js';
import type { Checkpoint, RecorderEntry, TranscriptRoot } from './recorder.js';
import {
  ENTRY_KEYS,
  EntryChainVerifier,
  readCheckpoint,
  readTranscriptRoot,
  verifyCheckpointSignature,
} from './recorder.js';

export interface RecorderSummary {
  readonly entry_count: number;
  readonly checkpoint_count: number;
  readonly signed_checkpoints: number;
  readonly transcript_root?: TranscriptRoot;
  /** The transcript_root is followed by a signed, verified checkpoint. */
  readonly seal_anchored: boolean;
}

export class RecorderVerifier {
  private readonly links: EntryChainVerifier;
  private entries = 0;
  private checkpoints = 0;
  private signed = 0;
  private previousSeq: bigint | undefined;
  private previousCheckpoint: Checkpoint | undefined;
  private root: TranscriptRoot | undefined;
  private sealAnchored = false;

  constructor(private readonly backend: CryptoBackend) {
    this.links = new EntryChainVerifier(backend);
  }

  /** Checks the next entry against the recorder so far and the receipt chain fed up to it. */
  push(entry: RecorderEntry, chain: ChainVerifier): Outcome<number> {
    const bad = (message: string): ReturnType<typeof fail> =>
      fail('chain', `entry seq ${entry.seq}: ${message}`);
    const members = entry.doc.root.kind === 'object' ? entry.doc.root.members.keys() : [];
    for (const key of members) {
      // Go would read such a key (case-insensitively) or drop it, unhashed either way.
      if (!ENTRY_KEYS.includes(key))
        return bad(`field ${goQuote(key)} is not covered by the entry hash`);
    }
    if (this.sealAnchored)
      return bad(
        `${goQuote(entry.type)} after the sealing checkpoint (a sealed recorder writes nothing more)`,
      );
    const linked = this.links.push(entry);
    if (!linked.ok) return linked;
    const previousSeq = this.previousSeq;
    this.previousSeq = entry.seq;
    this.entries++;

    if (entry.type === 'action_receipt' && this.root)
      return bad('action_receipt after transcript_root');
    if (entry.type === 'transcript_root') {
      if (this.root) return bad('second transcript_root');
      const read = readTranscriptRoot(entry);
      if (!read.ok) return read;
      const root = read.value;
      this.root = root;
      const sealed = chain.report();
      const lastSegment = sealed.segments[sealed.segments.length - 1];
      if (root.root_hash !== sealed.root_hash)
        return bad('transcript_root root_hash does not match the receipt chain');
      if (root.final_seq !== sealed.final_seq)
        return bad('transcript_root final_seq does not match the receipt chain');
      if (
        root.receipt_count !== BigInt(lastSegment?.receipt_count ?? 0) &&
        root.receipt_count !== BigInt(sealed.receipt_count)
      ) {
        return bad('transcript_root receipt_count does not match the receipt chain');
      }
    }
    if (entry.type !== 'checkpoint') return { ok: true, value: this.entries };

    const read = readCheckpoint(entry);
    if (!read.ok) return read;
    const cp = read.value;
    const previous = this.previousCheckpoint;
    this.checkpoints++;
    if (cp.last_seq + 1n !== entry.seq || previousSeq !== cp.last_seq) {
      return bad('checkpoint span does not end at the preceding entry');
    }
    if (cp.first_seq > cp.last_seq || cp.entry_count - 1n !== cp.last_seq - cp.first_seq) {
      return bad('checkpoint entry_count does not match its span');
    }
    if (previous && cp.first_seq <= previous.last_seq) return bad('checkpoint spans overlap');
    if (previous && (previous.signature === '') !== (cp.signature === '')) {
      return bad('checkpoints mix signed and unsigned');
    }
    if (cp.signature !== '') {
      // The receipt signing key signs checkpoints; after a rotation that is the endorsed new key.
      const keys = chain.authorisedKeys.map((k) => fromHex(k) ?? new Uint8Array());
      if (!keys.some((key) => verifyCheckpointSignature(this.backend, entry, cp, key))) {
        return bad('checkpoint signature verification failed');
      }
      this.signed++;
      if (this.root) this.sealAnchored = true;
    }
    this.previousCheckpoint = cp;
    return { ok: true, value: this.entries };
  }

  summary(): RecorderSummary {
    return {
      entry_count: this.entries,
      checkpoint_count: this.checkpoints,
      signed_checkpoints: this.signed,
      ...(this.root ? { transcript_root: this.root } : {}),
      seal_anchored: this.sealAnchored,
    };
  }
}
