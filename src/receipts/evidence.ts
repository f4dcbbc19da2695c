// Reading evidence (recorder JSONL, bare receipt JSONL, a receipts.json array, one receipt, or a
// directory of evidence-<session>-<seq>.jsonl given as names + contents) and verifying it whole.
import { decodeUtf8, fromHex, utf8 } from './bytes.js';
import type { ChainOptions, ChainReport } from './chain.js';
import { DEFAULT_SESSION_ID, verifyChain } from './chain.js';
import type { CryptoBackend } from './crypto.js';
import type { Failure, Outcome } from './failure.js';
import { fail } from './failure.js';
import type { JsonDocument, JsonNode } from './json.js';
import { parseJson } from './json.js';
import type { Receipt } from './receipt.js';
import { decodeReceipt } from './receipt.js';
import type { Checkpoint, RecorderEntry, TranscriptRoot } from './recorder.js';
import {
  parseEntryLine,
  readCheckpoint,
  readTranscriptRoot,
  verifyCheckpointSignature,
  verifyEntryChain,
} from './recorder.js';

// Pipelock's reader limits: they bound memory on hostile input.
export const MAX_LINE_BYTES = 1024 * 1024;
export const MAX_SHARD_BYTES = 8 * 1024 * 1024;
export const MAX_SHARDS = 256;

export interface Evidence {
  /** Recorder entries in order (empty when the input held bare receipts). */
  readonly entries: readonly RecorderEntry[];
  /** The action receipts, in order. */
  readonly receipts: readonly Receipt[];
}

export interface JsonlLine {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly text: string;
}

/**
 * Splits on `\n` only (never on U+2028/U+0085, which may sit raw inside JSON strings), drops one
 * trailing `\r` per line and skips blank lines.
 */
export function splitJsonl(text: string): JsonlLine[] {
  const out: JsonlLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() !== '') out.push({ line: i + 1, text: line });
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
  return decoded.ok ? decoded : fail(decoded.failure.class, `${where}: ${decoded.failure.message}`);
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
    return receipt.ok ? { ok: true, value: { entries: [], receipts: [receipt.value] } } : receipt;
  }
  return readJsonl(text.value, label);
}

function readJsonl(text: string, label: string): Outcome<Evidence> {
  const entries: RecorderEntry[] = [];
  const receipts: Receipt[] = [];
  for (const { line, text: lineText } of splitJsonl(text)) {
    const where = `${label}: line ${line}`;
    if (lineText.length * 3 > MAX_LINE_BYTES && utf8(lineText).length > MAX_LINE_BYTES) {
      return fail('malformed', `${where}: longer than ${MAX_LINE_BYTES} bytes`);
    }
    const parsed = parseJson(lineText);
    if (!parsed.ok) return fail('malformed', `${where}: ${parsed.error}`);
    const root = parsed.doc.root;
    if (root.kind === 'object' && root.members.has('action_record')) {
      if (entries.length > 0)
        return fail('malformed', `${where}: bare receipt mixed with recorder entries`);
      const receipt = receiptFrom(parsed.doc, root, where);
      if (!receipt.ok) return receipt;
      receipts.push(receipt.value);
      continue;
    }
    if (receipts.length > entries.length)
      return fail('malformed', `${where}: recorder entry mixed with bare receipts`);
    const entry = parseEntryLine(lineText);
    if (!entry.ok) return fail('malformed', `${where}: ${entry.failure.message}`);
    entries.push(entry.value);
    if (entry.value.type !== 'action_receipt') continue;
    const detail = entry.value.detailNode;
    if (detail?.kind !== 'object')
      return fail('malformed', `${where}: action_receipt detail is not a receipt object`);
    const receipt = receiptFrom(entry.value.doc, detail, where);
    if (!receipt.ok) return receipt;
    receipts.push(receipt.value);
  }
  return { ok: true, value: { entries, receipts } };
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

export interface RecorderSummary {
  readonly entry_count: number;
  readonly checkpoint_count: number;
  readonly signed_checkpoints: number;
  readonly transcript_root?: TranscriptRoot;
  /** The transcript_root is followed by a signed, verified checkpoint. */
  readonly seal_anchored: boolean;
}

export interface EvidenceOptions extends ChainOptions {
  /** Also verify the recorder entry chain, checkpoints and transcript root. */
  readonly wholeRecorder?: boolean;
  /** With wholeRecorder: accept a transcript_root that no signed checkpoint follows. */
  readonly allowUnanchoredSeal?: boolean;
}

export interface EvidenceReport extends ChainReport {
  readonly recorder?: RecorderSummary;
}

/** Verifies the receipt chain and, with `wholeRecorder`, the recorder layer around it. */
export function verifyEvidence(
  backend: CryptoBackend,
  evidence: Evidence,
  options: EvidenceOptions = {},
): EvidenceReport {
  const chain = verifyChain(backend, evidence.receipts, options);
  if (!options.wholeRecorder || !chain.valid) return chain;
  if (evidence.entries.length === 0) {
    return invalidate(chain, {
      class: 'malformed',
      message: 'whole-recorder verification needs recorder entries, not bare receipts',
    });
  }
  const keys = (options.trustedKeys?.length ? options.trustedKeys : chain.signer_keys).map(
    (k) => fromHex(k) ?? new Uint8Array(),
  );
  const recorder = verifyRecorder(backend, evidence.entries, chain, keys);
  if (!recorder.ok) return invalidate(chain, recorder.failure);
  if (
    recorder.value.transcript_root &&
    !recorder.value.seal_anchored &&
    !options.allowUnanchoredSeal
  ) {
    return invalidate(chain, {
      class: 'chain',
      message: 'transcript_root is not followed by a signed checkpoint (the seal is not anchored)',
    });
  }
  return { ...chain, recorder: recorder.value };
}

function invalidate(chain: ChainReport, error: Failure): EvidenceReport {
  return { ...chain, valid: false, sealed: false, error };
}

function verifyRecorder(
  backend: CryptoBackend,
  entries: readonly RecorderEntry[],
  chain: ChainReport,
  keys: readonly Uint8Array[],
): Outcome<RecorderSummary> {
  const linked = verifyEntryChain(backend, entries);
  if (!linked.ok) return linked;
  let checkpoints = 0;
  let signed = 0;
  let previous: Checkpoint | undefined;
  let root: TranscriptRoot | undefined;
  let sealAnchored = false;
  for (const [i, entry] of entries.entries()) {
    const bad = (message: string): ReturnType<typeof fail> =>
      fail('chain', `entry seq ${entry.seq}: ${message}`);
    if (entry.type === 'action_receipt' && root) return bad('action_receipt after transcript_root');
    if (entry.type === 'transcript_root') {
      if (root) return bad('second transcript_root');
      const read = readTranscriptRoot(entry);
      if (!read.ok) return read;
      root = read.value;
      const lastSegment = chain.segments[chain.segments.length - 1];
      if (root.root_hash !== chain.root_hash)
        return bad('transcript_root root_hash does not match the receipt chain');
      if (root.final_seq !== chain.final_seq)
        return bad('transcript_root final_seq does not match the receipt chain');
      if (
        root.receipt_count !== BigInt(lastSegment?.receipt_count ?? 0) &&
        root.receipt_count !== BigInt(chain.receipt_count)
      ) {
        return bad('transcript_root receipt_count does not match the receipt chain');
      }
    }
    if (entry.type !== 'checkpoint') continue;
    const read = readCheckpoint(entry);
    if (!read.ok) return read;
    const cp = read.value;
    checkpoints++;
    if (cp.last_seq + 1n !== entry.seq || entries[i - 1]?.seq !== cp.last_seq) {
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
      if (!keys.some((key) => verifyCheckpointSignature(backend, entry, cp, key))) {
        return bad('checkpoint signature verification failed');
      }
      signed++;
      if (root) sealAnchored = true;
    }
    previous = cp;
  }
  return {
    ok: true,
    value: {
      entry_count: entries.length,
      checkpoint_count: checkpoints,
      signed_checkpoints: signed,
      ...(root ? { transcript_root: root } : {}),
      seal_anchored: sealAnchored,
    },
  };
}
