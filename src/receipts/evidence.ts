// Reading evidence (recorder JSONL, bare receipt JSONL, a receipts.json array, one receipt, or a
// directory of evidence-<session>-<seq>.jsonl given as names + contents) and verifying it, either
// whole or line by line with EvidenceVerifier.
import { decodeUtf8, utf8 } from './bytes.js';
import type { ChainOptions, ChainReport } from './chain.js';
import { ChainVerifier, DEFAULT_SESSION_ID } from './chain.js';
import type { CryptoBackend } from './crypto.js';
import type { Failure, Outcome } from './failure.js';
import { fail } from './failure.js';
import { compactRaw, escapeNextLine } from './go-json.js';
import { integerIn, UINT64 } from './go-struct.js';
import type { JsonDocument, JsonNode } from './json.js';
import { parseJson } from './json.js';
import type { Receipt } from './receipt.js';
import { decodeReceipt, encodeReceipt } from './receipt.js';
import type { RecorderEntry } from './recorder.js';
import { decodeEntry } from './recorder.js';
import type { RecorderSummary } from './recorder-verifier.js';
import { RecorderVerifier } from './recorder-verifier.js';

// Pipelock's reader limits: they bound memory on hostile input.
export const MAX_LINE_BYTES = 1024 * 1024;
export const MAX_SHARD_BYTES = 8 * 1024 * 1024;
export const MAX_SHARDS = 256;

export interface Evidence {
  /** Recorder entries in order (empty when the input held bare receipts). */
  readonly entries: readonly RecorderEntry[];
  /** The action receipts, in order. */
  readonly receipts: readonly Receipt[];
  /** The input was one receipt document, judged on its own rather than as a chain. */
  readonly single?: true;
}

export interface JsonlLine {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly text: string;
}

/**
 * A line of only white space as Go's strings.TrimSpace sees it (Unicode White_Space): unlike
 * String.prototype.trim, U+0085 is white space and a byte order mark is not.
 */
export function isBlankLine(text: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/.test(text);
}

/**
 * Splits on `\n` only (never on U+2028/U+0085, which may sit raw inside JSON strings), drops one
 * trailing `\r` per line and skips blank lines.
 */
export function splitJsonl(text: string): JsonlLine[] {
  const out: JsonlLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!isBlankLine(line)) out.push({ line: i + 1, text: line });
  });
  return out;
}

function asText(input: string | Uint8Array, label: string): Outcome<string> {
  if (typeof input === 'string') return { ok: true, value: input };
  const text = decodeUtf8(input);
  return text === undefined
    ? fail('malformed', `${label}: not valid UTF-8`)
    : { ok: true, value: text };
}

function receiptFrom(doc: JsonDocument, node: JsonNode, where: string): Outcome<Receipt> {
  const decoded = decodeReceipt(doc, node);
  if (decoded.ok) return decoded;
  const seq = chainSeqOf(node);
  const failure = { class: decoded.failure.class, message: `${where}: ${decoded.failure.message}` };
  return { ok: false, failure: seq === undefined ? failure : { ...failure, seq } };
}

/** The chain_seq a receipt that does not decode claims, if it reads as one. */
function chainSeqOf(node: JsonNode): bigint | undefined {
  const record = node.kind === 'object' ? node.members.get('action_record') : undefined;
  const seq = record?.kind === 'object' ? record.members.get('chain_seq') : undefined;
  return seq && integerIn(seq, UINT64);
}

/** Reads one evidence file of any supported shape. `label` names it in error messages. */
export function readEvidence(input: string | Uint8Array, label = 'evidence'): Outcome<Evidence> {
  const text = asText(input, label);
  if (!text.ok) return text;
  const whole = parseJson(text.value);
  if (whole.ok && whole.doc.root.kind === 'array') {
    const receipts: Receipt[] = [];
    for (const [i, node] of whole.doc.root.items.entries()) {
      const receipt = receiptFrom(whole.doc, node, `${label}: receipt ${i}`);
      if (!receipt.ok) return receipt;
      receipts.push(receipt.value);
    }
    return { ok: true, value: { entries: [], receipts } };
  }
  if (whole.ok && whole.doc.root.kind === 'object' && whole.doc.root.members.has('action_record')) {
    const receipt = receiptFrom(whole.doc, whole.doc.root, label);
    if (!receipt.ok) return receipt;
    return { ok: true, value: { entries: [], receipts: [receipt.value], single: true } };
  }
  return readJsonl(text.value, label);
}

/** One JSONL line: a bare receipt, or a recorder entry (with its receipt if it carries one). */
type EvidenceLine =
  | { readonly receipt: Receipt; readonly entry?: undefined }
  | { readonly entry: RecorderEntry; readonly receipt?: Receipt };

/** Reads one JSONL line (without its terminator); `where` prefixes error messages. */
function readEvidenceLine(text: string, where: string): Outcome<EvidenceLine> {
  if (text.length * 3 > MAX_LINE_BYTES && utf8(text).length > MAX_LINE_BYTES) {
    return fail('malformed', `${where}: longer than ${MAX_LINE_BYTES} bytes`);
  }
  const parsed = parseJson(text);
  if (!parsed.ok) return fail('malformed', `${where}: ${parsed.error}`);
  const root = parsed.doc.root;
  if (root.kind === 'object' && root.members.has('action_record')) {
    const receipt = receiptFrom(parsed.doc, root, where);
    return receipt.ok ? { ok: true, value: { receipt: receipt.value } } : receipt;
  }
  const entry = decodeEntry(parsed.doc);
  if (!entry.ok) return fail('malformed', `${where}: ${entry.failure.message}`);
  if (entry.value.type !== 'action_receipt') return { ok: true, value: { entry: entry.value } };
  const detail = entry.value.detailNode;
  if (detail?.kind !== 'object')
    return fail('malformed', `${where}: action_receipt detail is not a receipt object`);
  const receipt = receiptFrom(entry.value.doc, detail, where);
  if (!receipt.ok) return receipt;
  // Pipelock writes the receipt it signed as Go marshals it (this engine, with NEL escaped).
  // Another spelling of the same values (an escape in upper-case hex, reordered keys) is not
  // what was written, so it is refused.
  const encoded = encodeReceipt(receipt.value);
  const written = entry.value.detail;
  if (
    written !== encoded &&
    compactRaw(written) !== encoded &&
    written !== escapeNextLine(encoded)
  ) {
    const message = `${where}: receipt bytes differ from the encoding that was signed`;
    return {
      ok: false,
      failure: { class: 'malformed', message, seq: receipt.value.action_record.chain_seq },
    };
  }
  return { ok: true, value: { entry: entry.value, receipt: receipt.value } };
}

function readJsonl(text: string, label: string): Outcome<Evidence> {
  const entries: RecorderEntry[] = [];
  const receipts: Receipt[] = [];
  for (const { line, text: lineText } of splitJsonl(text)) {
    const where = `${label}: line ${line}`;
    const read = readEvidenceLine(lineText, where);
    if (!read.ok) return read;
    const mixed = mixedShape(read.value, entries.length > 0, receipts.length > entries.length);
    if (mixed) return fail('malformed', `${where}: ${mixed}`);
    if (read.value.entry) entries.push(read.value.entry);
    if (read.value.receipt) receipts.push(read.value.receipt);
  }
  return { ok: true, value: { entries, receipts } };
}

function mixedShape(line: EvidenceLine, hadEntries: boolean, hadBare: boolean): string | undefined {
  if (!line.entry && hadEntries) return 'bare receipt mixed with recorder entries';
  if (line.entry && hadBare) return 'recorder entry mixed with bare receipts';
  return undefined;
}

export interface EvidenceFile {
  readonly name: string;
  readonly content: string | Uint8Array;
}

/**
 * The names of `evidence-<session>-<firstSeq>.jsonl` files for one session, ordered by the
 * number (as uint64), not lexicographically. Other names are ignored.
 */
export function evidenceFileOrder(
  names: readonly string[],
  sessionId = DEFAULT_SESSION_ID,
): string[] {
  const prefix = `evidence-${sessionId}-`;
  const numbered: Array<[bigint, string]> = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.jsonl')) continue;
    const digits = name.slice(prefix.length, -'.jsonl'.length);
    if (/^[0-9]+$/.test(digits) && BigInt(digits) < 2n ** 64n)
      numbered.push([BigInt(digits), name]);
  }
  return numbered.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, name]) => name);
}

/** Reads a directory listing's session files in order as one continuous evidence stream. */
export function readEvidenceDirectory(
  files: readonly EvidenceFile[],
  sessionId = DEFAULT_SESSION_ID,
): Outcome<Evidence> {
  const byName = new Map(files.map((f) => [f.name, f.content]));
  const entries: RecorderEntry[] = [];
  const receipts: Receipt[] = [];
  const names = evidenceFileOrder([...byName.keys()], sessionId);
  if (names.length > MAX_SHARDS) {
    return fail(
      'malformed',
      `session ${sessionId} has ${names.length} evidence files, more than ${MAX_SHARDS}`,
    );
  }
  for (const name of names) {
    const content = byName.get(name) ?? '';
    const size = typeof content === 'string' ? utf8(content).length : content.length;
    if (size > MAX_SHARD_BYTES)
      return fail('malformed', `${name}: larger than ${MAX_SHARD_BYTES} bytes`);
    const text = asText(content, name);
    if (!text.ok) return text;
    const evidence = readJsonl(text.value, name);
    if (!evidence.ok) return evidence;
    entries.push(...evidence.value.entries);
    receipts.push(...evidence.value.receipts);
  }
  return { ok: true, value: { entries, receipts } };
}

export interface EvidenceOptions extends ChainOptions {
  /** Also verify the recorder entry chain, checkpoints and transcript root. */
  readonly wholeRecorder?: boolean;
  /**
   * With wholeRecorder: accept a transcript_root that no signed checkpoint follows (a recorder
   * that does not sign checkpoints). A session_close still needs its transcript_root.
   */
  readonly allowUnanchoredSeal?: boolean;
}

export interface TornTail {
  /** The unterminated last line, e.g. `evidence-proxy-0.jsonl: line 12`. */
  readonly where: string;
  readonly bytes: number;
}

export interface EvidenceReport extends ChainReport {
  readonly recorder?: RecorderSummary;
  /** A last line cut short by a writer that stopped mid-write (not judged; reported). */
  readonly torn_tail?: TornTail;
}

/**
 * Verifies evidence as it is read, one line, entry or receipt at a time, in bounded memory. A
 * broken receipt chain outranks any other finding; otherwise the first malformed line or recorder
 * failure is reported. Each feeding method returns false once the verdict can no longer change.
 */
export class EvidenceVerifier {
  private readonly chain: ChainVerifier;
  private readonly recorder: RecorderVerifier | undefined;
  private sawEntries = false;
  private sawBare = false;
  private failure: Failure | undefined;
  private malformed = false;
  private torn: TornTail | undefined;

  constructor(
    backend: CryptoBackend,
    private readonly options: EvidenceOptions = {},
  ) {
    this.chain = new ChainVerifier(backend, options);
    if (options.wholeRecorder) this.recorder = new RecorderVerifier(backend);
  }

  private get open(): boolean {
    return this.chain.intact && !this.malformed;
  }

  /** One JSONL line without its terminator; `where` names it in errors (`file: line 3`). */
  line(text: string, where: string): boolean {
    if (!this.open) return false;
    if (this.torn) return this.halt(tornInTheMiddle(this.torn));
    const read = readEvidenceLine(text, where);
    if (!read.ok) return this.halt(read.failure);
    const mixed = mixedShape(read.value, this.sawEntries, this.sawBare);
    if (mixed) return this.halt({ class: 'malformed', message: `${where}: ${mixed}` });
    return read.value.entry
      ? this.entry(read.value.entry, read.value.receipt)
      : this.receipt(read.value.receipt);
  }

  /** A recorder entry and, for an action_receipt entry, the receipt in it. */
  entry(entry: RecorderEntry, receipt?: Receipt): boolean {
    if (!this.open) return false;
    this.sawEntries = true;
    if (receipt && !this.chain.push(receipt)) return false;
    if (this.recorder && !this.failure) {
      const checked = this.recorder.push(entry, this.chain);
      if (!checked.ok) this.failure = checked.failure;
    }
    return true;
  }

  /** A bare receipt (from a receipts array or bare-receipt JSONL). */
  receipt(receipt: Receipt): boolean {
    if (!this.open) return false;
    this.sawBare = true;
    return this.chain.push(receipt);
  }

  /** The input's only receipt, a document of its own: judged alone, as Pipelock does. */
  singleReceipt(receipt: Receipt): boolean {
    if (!this.open) return false;
    this.sawBare = true;
    return this.chain.pushAlone(receipt);
  }

  /**
   * An unterminated, unparsable last line: a writer cut off mid-write. Only the very end of the
   * evidence may be torn; anything read after it makes the evidence malformed.
   */
  tornTail(where: string, bytes: number): boolean {
    if (!this.open) return false;
    if (this.torn) return this.halt(tornInTheMiddle(this.torn));
    this.torn = { where, bytes };
    return true;
  }

  /** The input could not be read as evidence (malformed): the verdict settles on that. */
  halt(failure: Failure): false {
    if (this.open) {
      this.failure ??= failure;
      this.malformed = true;
    }
    return false;
  }

  finish(): EvidenceReport {
    const report = this.judge();
    if (!this.torn || !report.valid) return report;
    // A sealed writer writes nothing more, so bytes after a seal were put there by someone else.
    if (report.sealed) {
      return invalidate(report, {
        class: 'malformed',
        message: `${this.torn.where}: a torn line follows the sealed chain`,
      });
    }
    return { ...report, torn_tail: this.torn };
  }

  private judge(): EvidenceReport {
    const chain = this.chain.finish();
    if (!chain.valid && chain.error?.class !== 'empty') return chain;
    if (this.failure) return invalidate(chain, this.failure);
    if (!this.recorder || !chain.valid) return chain;
    if (!this.sawEntries) {
      return invalidate(chain, {
        class: 'malformed',
        message: 'whole-recorder verification needs recorder entries, not bare receipts',
      });
    }
    const summary = this.recorder.summary();
    const unsealed = sealGap(chain, summary, this.options.allowUnanchoredSeal === true);
    if (unsealed) return invalidate(chain, { class: 'chain', message: unsealed });
    return { ...chain, recorder: summary };
  }
}

/**
 * What the recorder's seal lacks, if anything. The session_close signs the receipt chain, not the
 * recorder entries around it (their summaries, other entry types): the signed checkpoint after the
 * transcript_root does, so without both those entries could be rewritten and re-hashed unseen.
 * Only the checkpoint's signature can be waived (`allowUnanchoredSeal`); the root is always
 * written.
 */
function sealGap(
  chain: ChainReport,
  recorder: RecorderSummary,
  allowUnanchored: boolean,
): string | undefined {
  if (chain.sealed && !recorder.transcript_root) {
    return 'the session_close is not followed by a transcript_root (the seal was cut off or removed)';
  }
  if (recorder.transcript_root && !recorder.seal_anchored && !allowUnanchored) {
    return 'transcript_root is not followed by a signed checkpoint (the seal is not anchored)';
  }
  return undefined;
}

/** Verifies the receipt chain and, with `wholeRecorder`, the recorder layer around it. */
export function verifyEvidence(
  backend: CryptoBackend,
  evidence: Evidence,
  options: EvidenceOptions = {},
): EvidenceReport {
  const verifier = new EvidenceVerifier(backend, options);
  const [only] = evidence.receipts;
  if (evidence.single && only) {
    verifier.singleReceipt(only);
    return verifier.finish();
  }
  if (evidence.entries.length === 0) {
    for (const receipt of evidence.receipts) if (!verifier.receipt(receipt)) break;
    return verifier.finish();
  }
  let next = 0;
  for (const entry of evidence.entries) {
    const receipt = entry.type === 'action_receipt' ? evidence.receipts[next++] : undefined;
    if (!verifier.entry(entry, receipt)) break;
  }
  return verifier.finish();
}

function tornInTheMiddle(torn: TornTail): Failure {
  return { class: 'malformed', message: `${torn.where}: torn line followed by more evidence` };
}

function invalidate(chain: ChainReport, error: Failure): EvidenceReport {
  const brokenAt = error.seq === undefined ? {} : { broken_at_seq: error.seq };
  return { ...chain, valid: false, sealed: false, error, ...brokenAt };
}
