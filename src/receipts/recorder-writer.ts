// Produces flight-recorder JSONL lines (v2 entries, as current Pipelock writes them) with their
// hash chain, receipt entries, signed checkpoints and the transcript_root seal. Returns text only.
import type { BuiltReceipt } from './builder.js';
import type { CryptoBackend } from './crypto.js';
import { escapeNextLine, goString } from './go-json.js';
import { formatRfc3339Nano, parseGoTime, toUtc } from './go-time.js';
import { parseJson } from './json.js';
import type { RecorderEntry } from './recorder.js';
import { entryHash, RECORDER_GENESIS, signCheckpoint } from './recorder.js';

export interface EntryInput {
  /** RFC 3339 time; written as UTC RFC3339Nano. */
  readonly ts: string;
  readonly type: string;
  readonly event_kind?: string;
  readonly trace_id?: string;
  readonly transport: string;
  readonly summary: string;
  /** The detail value as compact JSON text. */
  readonly detail: string;
  readonly raw_ref?: string;
}

export class RecorderWriter {
  private nextSeq = 0n;
  private prevHash = RECORDER_GENESIS;
  private sinceCheckpoint: bigint[] = [];

  constructor(
    private readonly backend: CryptoBackend,
    private readonly sessionId: string,
    /** Seed that signs checkpoints; without it checkpoints carry an empty signature. */
    private readonly checkpointSeed?: Uint8Array,
    /** The last entry of an existing recorder session to continue (after a restart). */
    tail?: { readonly seq: bigint; readonly hash: string },
  ) {
    if (tail) {
      this.nextSeq = tail.seq + 1n;
      this.prevHash = tail.hash;
    }
  }

  /** Appends one entry and returns its line, `\n` included. */
  append(input: EntryInput): string {
    const parsedDetail = parseJson(input.detail);
    if (!parsedDetail.ok) throw new Error(`recorder entry detail: ${parsedDetail.error}`);
    return this.appendWellFormed(input);
  }

  /** `append` for a detail this writer or the receipt builder encoded (valid JSON by construction). */
  private appendWellFormed(input: EntryInput): string {
    const time = parseGoTime(input.ts);
    if (!time.ok) throw new Error(`recorder entry ts: ${time.error}`);
    for (const [field, value] of Object.entries(input)) {
      // v2 readers refuse NUL in any string field; the detail JSON escapes it, so it is fine there.
      if (field !== 'detail' && value.includes('\0'))
        throw new Error(`recorder entry ${field} cannot contain NUL`);
    }
    const entry: Omit<RecorderEntry, 'doc'> = {
      v: 2,
      seq: this.nextSeq,
      ts: formatRfc3339Nano(toUtc(time.time)),
      session_id: this.sessionId,
      chain_kind: '',
      writer_instance_id: '',
      trace_id: input.trace_id ?? '',
      type: input.type,
      event_kind: input.event_kind ?? '',
      transport: input.transport,
      summary: input.summary,
      detail: input.detail,
      raw_ref: input.raw_ref ?? '',
      prev_hash: this.prevHash,
      hash: '',
    };
    const hash = entryHash(this.backend, entry);
    const optional = (key: string, value: string): string =>
      value === '' ? '' : `,"${key}":${goString(value)}`;
    const line =
      `{"v":2,"seq":${entry.seq},"ts":${goString(entry.ts)},"session_id":${goString(entry.session_id)}` +
      optional('trace_id', entry.trace_id) +
      `,"type":${goString(entry.type)}` +
      optional('event_kind', entry.event_kind) +
      `,"transport":${goString(entry.transport)},"summary":${goString(entry.summary)},"detail":${entry.detail}` +
      optional('raw_ref', entry.raw_ref) +
      `,"prev_hash":${goString(entry.prev_hash)},"hash":${goString(hash)}}\n`;
    this.sinceCheckpoint.push(entry.seq);
    this.prevHash = hash;
    this.nextSeq++;
    return line;
  }

  /** The recorder entry for a receipt, in Pipelock's shape. */
  appendReceipt(built: BuiltReceipt, ts: string): string {
    const ar = built.receipt.action_record;
    return this.appendWellFormed({
      ts,
      type: 'action_receipt',
      event_kind: ar.action_type,
      transport: ar.transport,
      summary: `receipt: ${ar.verdict} ${ar.action_type} ${ar.transport}`,
      detail: escapeNextLine(built.json),
    });
  }

  /** Seals the receipt chain: no receipts may follow in this session. */
  appendTranscriptRoot(
    ts: string,
    root: {
      finalSeq: bigint;
      rootHash: string;
      receiptCount: number;
      startTime: string;
      endTime: string;
    },
  ): string {
    const detail =
      `{"session_id":${goString(this.sessionId)},"final_seq":${root.finalSeq},"root_hash":${goString(root.rootHash)}` +
      `,"receipt_count":${root.receiptCount},"start_time":${goString(root.startTime)},"end_time":${goString(root.endTime)}}`;
    return this.appendWellFormed({
      ts,
      type: 'transcript_root',
      event_kind: 'transcript_root',
      transport: '',
      summary: `transcript_root: ${root.receiptCount} receipts, root=${root.rootHash.slice(0, 16)}`,
      detail,
    });
  }

  /** A checkpoint over the entries since the previous one (none if nothing was written). */
  appendCheckpoint(ts: string): string {
    const first = this.sinceCheckpoint[0];
    const last = this.sinceCheckpoint[this.sinceCheckpoint.length - 1];
    if (first === undefined || last === undefined) return '';
    const count = this.sinceCheckpoint.length;
    const signature = this.checkpointSeed
      ? signCheckpoint(this.backend, this.checkpointSeed, this.prevHash)
      : '';
    const line = this.appendWellFormed({
      ts,
      type: 'checkpoint',
      event_kind: 'checkpoint',
      transport: '',
      summary: `checkpoint: ${count} entries [seq ${first}-${last}]`,
      detail: `{"entry_count":${count},"first_seq":${first},"last_seq":${last},"signature":${goString(signature)}}`,
    });
    this.sinceCheckpoint = [];
    return line;
  }
}
