// Flight-recorder entries (the outer JSONL envelope, spec §2): parsing with Go's rules and error
// texts, the NUL-joined entry hash for v1/v2/v3, the entry hash chain, and signed checkpoints.
import { fromHex, toHex, utf8 } from './bytes.js';
import type { CryptoBackend } from './crypto.js';
import type { Outcome } from './failure.js';
import { fail, goQuote } from './failure.js';
import { compactRaw } from './go-json.js';
import { INT64, integerIn, UINT64 } from './go-struct.js';
import { formatRfc3339Nano, GO_ZERO_TIMESTAMP, parseGoTime, toUtc } from './go-time.js';
import type { JsonDocument, JsonNode } from './json.js';
import { parseJson, rawText } from './json.js';

export const RECORDER_GENESIS = 'genesis';

export interface RecorderEntry {
  readonly v: number;
  readonly seq: bigint;
  /** `ts` converted to UTC and printed as Go's RFC3339Nano (the form that is hashed). */
  readonly ts: string;
  readonly session_id: string;
  readonly chain_kind: string;
  readonly writer_instance_id: string;
  readonly trace_id: string;
  readonly type: string;
  readonly event_kind: string;
  readonly transport: string;
  readonly summary: string;
  /** Source text of `detail` exactly as written (`null` when absent). */
  readonly detail: string;
  readonly raw_ref: string;
  readonly prev_hash: string;
  readonly hash: string;
  /** The parsed line and its detail node, for reading receipts and checkpoints out of it. */
  readonly doc: JsonDocument;
  readonly detailNode?: JsonNode;
}

/** Every key a recorder entry may carry: the hash covers all of them except `hash` itself. */
export const ENTRY_KEYS: readonly string[] = [
  'v',
  'seq',
  'ts',
  'session_id',
  'chain_kind',
  'writer_instance_id',
  'trace_id',
  'type',
  'event_kind',
  'transport',
  'summary',
  'detail',
  'raw_ref',
  'prev_hash',
  'hash',
];

const STRING_FIELDS = [
  'session_id',
  'chain_kind',
  'writer_instance_id',
  'trace_id',
  'type',
  'event_kind',
  'transport',
  'summary',
  'raw_ref',
  'prev_hash',
  'hash',
] as const;

function goTypeError(node: JsonNode, field: string, goType: string, withValue: boolean): string {
  const value = node.kind === 'bool' ? 'bool' : node.kind;
  const shown = withValue && node.kind === 'number' ? `number ${node.text}` : value;
  return `json: cannot unmarshal ${shown} into Go struct field .${field} of type ${goType}`;
}

function readInt(node: JsonNode | undefined, field: string, goType: 'int' | 'uint64'): bigint {
  if (node === undefined || node.kind === 'null') return 0n;
  if (node.kind !== 'number') throw new EntryError(goTypeError(node, field, goType, false));
  const value = integerIn(node, goType === 'uint64' ? UINT64 : INT64);
  if (value === undefined) throw new EntryError(goTypeError(node, field, goType, true));
  return value;
}

class EntryError extends Error {}

const ENTRY_KEY_SET: ReadonlySet<string> = new Set(ENTRY_KEYS);

/** The entry key that `key` spells in other case, if any (a key spelled exactly is not). */
function caseVariantOf(key: string): string | undefined {
  if (ENTRY_KEY_SET.has(key)) return undefined;
  // Upper then lower case folds as Go does for these names (ſ is s, the Kelvin sign k).
  const folded = key.toUpperCase().toLowerCase();
  return ENTRY_KEYS.find((name) => name === folded);
}

/** Parses one JSONL line into a recorder entry (Go recorder.ParseEntryLine rules). */
export function parseEntryLine(line: string): Outcome<RecorderEntry> {
  const parsed = parseJson(line);
  return parsed.ok ? decodeEntry(parsed.doc) : fail('malformed', parsed.error);
}

/** A recorder entry from its already parsed line. */
export function decodeEntry(doc: JsonDocument): Outcome<RecorderEntry> {
  if (doc.root.kind !== 'object') return fail('malformed', 'recorder entry is not a JSON object');
  const members = doc.root.members;
  // Go matches keys case-insensitively: a "Type" would be read as the type this reader ignores.
  for (const key of members.keys()) {
    const known = caseVariantOf(key);
    if (known !== undefined)
      return fail(
        'malformed',
        `recorder entry field "${key}" differs from "${known}" only in case`,
      );
  }
  try {
    const v = readInt(members.get('v'), 'v', 'int');
    const seq = readInt(members.get('seq'), 'seq', 'uint64');
    const tsNode = members.get('ts');
    let ts = GO_ZERO_TIMESTAMP;
    if (tsNode !== undefined && tsNode.kind !== 'null') {
      if (tsNode.kind !== 'string')
        throw new EntryError('Time.UnmarshalJSON: input is not a JSON string');
      const time = parseGoTime(rawText(doc, tsNode).slice(1, -1));
      if (!time.ok) throw new EntryError(time.error);
      ts = formatRfc3339Nano(toUtc(time.time));
    }
    const strings: Record<string, string> = {};
    for (const field of STRING_FIELDS) {
      const node = members.get(field);
      if (node === undefined || node.kind === 'null') strings[field] = '';
      else if (node.kind === 'string') strings[field] = node.value;
      else throw new EntryError(goTypeError(node, field, 'string', false));
    }
    const detailNode = members.get('detail');
    const entry: RecorderEntry = {
      v: Number(v),
      seq,
      ts,
      session_id: strings['session_id'] ?? '',
      chain_kind: strings['chain_kind'] ?? '',
      writer_instance_id: strings['writer_instance_id'] ?? '',
      trace_id: strings['trace_id'] ?? '',
      type: strings['type'] ?? '',
      event_kind: strings['event_kind'] ?? '',
      transport: strings['transport'] ?? '',
      summary: strings['summary'] ?? '',
      detail: detailNode ? rawText(doc, detailNode) : 'null',
      raw_ref: strings['raw_ref'] ?? '',
      prev_hash: strings['prev_hash'] ?? '',
      hash: strings['hash'] ?? '',
      doc,
      ...(detailNode ? { detailNode } : {}),
    };
    const problem = entryVersionProblem(entry);
    return problem ? fail('malformed', problem) : { ok: true, value: entry };
  } catch (err) {
    if (err instanceof EntryError) return fail('malformed', err.message);
    throw err;
  }
}

function entryVersionProblem(e: RecorderEntry): string | undefined {
  if (e.v < 1 || e.v > 3) return `unsupported recorder entry version ${e.v}`;
  if (e.v >= 2) {
    for (const field of STRING_FIELDS) {
      if (e[field].includes('\0')) return `v${e.v} ${field} cannot contain NUL`;
    }
  }
  const namespaced = e.chain_kind !== '' || e.writer_instance_id !== '';
  if (e.v !== 3 && namespaced) return 'legacy entry cannot carry v3 recorder namespace fields';
  if (e.v === 3 && (e.chain_kind === '' || e.writer_instance_id === '')) {
    return 'v3 entry requires chain_kind and writer_instance_id';
  }
  return undefined;
}

/** The entry hash: SHA-256 over the version's fields joined by NUL bytes, lowercase hex. */
export function entryHash(
  backend: CryptoBackend,
  e: Omit<RecorderEntry, 'doc' | 'detailNode'>,
): string {
  const detail = e.v === 1 ? compactRaw(e.detail) : e.detail;
  const fields: string[] = [String(e.v), String(e.seq), e.ts, e.session_id];
  if (e.v === 3) fields.push(e.chain_kind, e.writer_instance_id);
  fields.push(e.trace_id, e.type);
  if (e.v >= 2) fields.push(e.event_kind);
  fields.push(e.transport, e.summary, detail, e.raw_ref, e.prev_hash);
  // The fields joined by NUL bytes (UTF-8 encodes U+0000 as the single byte 0).
  return toHex(backend.sha256(fields.join('\0')));
}

/** Checks the entry hash chain one entry at a time, in file order (Go recorder.VerifyChain texts). */
export class EntryChainVerifier {
  private previous: RecorderEntry | undefined;
  private count = 0;

  constructor(private readonly backend: CryptoBackend) {}

  push(e: RecorderEntry): Outcome<number> {
    const broken = (message: string): ReturnType<typeof fail> =>
      fail('chain', `entry seq ${e.seq}: ${message}`);
    const previous = this.previous;
    if (previous) {
      if (previous.v === 3 && e.v !== 3)
        return broken('legacy entry cannot continue a v3 recorder namespace');
      if (previous.v !== 3 && e.v === 3)
        return broken('v3 chain cannot continue a legacy recorder namespace');
      if (
        e.v === 3 &&
        (e.chain_kind !== previous.chain_kind ||
          e.writer_instance_id !== previous.writer_instance_id)
      ) {
        return broken('v3 chain namespace changed');
      }
      if (e.prev_hash !== previous.hash) {
        return broken(`chain break: PrevHash ${e.prev_hash} != previous Hash ${previous.hash}`);
      }
    } else if (e.prev_hash !== RECORDER_GENESIS) {
      return broken(`first entry PrevHash should be "genesis", got ${goQuote(e.prev_hash)}`);
    }
    const computed = entryHash(this.backend, e);
    if (computed !== e.hash) return broken(`hash mismatch: computed ${computed}, stored ${e.hash}`);
    this.previous = e;
    return { ok: true, value: ++this.count };
  }
}

/** Checks the entry hash chain (Go recorder.VerifyChain texts). Entries are in file order. */
export function verifyEntryChain(
  backend: CryptoBackend,
  entries: readonly RecorderEntry[],
): Outcome<number> {
  const verifier = new EntryChainVerifier(backend);
  for (const e of entries) {
    const pushed = verifier.push(e);
    if (!pushed.ok) return pushed;
  }
  return { ok: true, value: entries.length };
}

export interface Checkpoint {
  readonly entry_count: bigint;
  readonly first_seq: bigint;
  readonly last_seq: bigint;
  /** Lowercase hex Ed25519 signature (no prefix), or empty when checkpoints are unsigned. */
  readonly signature: string;
}

export interface TranscriptRoot {
  readonly session_id: string;
  readonly final_seq: bigint;
  readonly root_hash: string;
  readonly receipt_count: bigint;
  readonly start_time: string;
  readonly end_time: string;
}

function detailObject(e: RecorderEntry, what: string): ReadonlyMap<string, JsonNode> {
  if (e.detailNode?.kind !== 'object') throw new EntryError(`${what} detail is not an object`);
  return e.detailNode.members;
}

function detailString(members: ReadonlyMap<string, JsonNode>, key: string, what: string): string {
  const node = members.get(key);
  if (node?.kind !== 'string') throw new EntryError(`${what} detail.${key} must be a string`);
  return node.value;
}

function detailUint(members: ReadonlyMap<string, JsonNode>, key: string, what: string): bigint {
  const node = members.get(key);
  if (node?.kind !== 'number' || !/^[0-9]+$/.test(node.text)) {
    throw new EntryError(`${what} detail.${key} must be an unsigned integer`);
  }
  return BigInt(node.text);
}

function readDetail<T>(
  e: RecorderEntry,
  what: string,
  keys: readonly string[],
  read: (m: ReadonlyMap<string, JsonNode>) => T,
): Outcome<T> {
  try {
    const members = detailObject(e, what);
    for (const key of members.keys()) {
      if (!keys.includes(key))
        throw new EntryError(`${what} detail has unknown field ${goQuote(key)}`);
    }
    return { ok: true, value: read(members) };
  } catch (err) {
    if (err instanceof EntryError) return fail('malformed', `entry seq ${e.seq}: ${err.message}`);
    throw err;
  }
}

export function readCheckpoint(e: RecorderEntry): Outcome<Checkpoint> {
  const keys = ['entry_count', 'first_seq', 'last_seq', 'signature'];
  return readDetail(e, 'checkpoint', keys, (m) => ({
    entry_count: detailUint(m, 'entry_count', 'checkpoint'),
    first_seq: detailUint(m, 'first_seq', 'checkpoint'),
    last_seq: detailUint(m, 'last_seq', 'checkpoint'),
    signature: detailString(m, 'signature', 'checkpoint'),
  }));
}

export function readTranscriptRoot(e: RecorderEntry): Outcome<TranscriptRoot> {
  const keys = ['session_id', 'final_seq', 'root_hash', 'receipt_count', 'start_time', 'end_time'];
  return readDetail(e, 'transcript_root', keys, (m) => ({
    session_id: detailString(m, 'session_id', 'transcript_root'),
    final_seq: detailUint(m, 'final_seq', 'transcript_root'),
    root_hash: detailString(m, 'root_hash', 'transcript_root'),
    receipt_count: detailUint(m, 'receipt_count', 'transcript_root'),
    start_time: detailString(m, 'start_time', 'transcript_root'),
    end_time: detailString(m, 'end_time', 'transcript_root'),
  }));
}

/** A checkpoint signature is Ed25519 over the ASCII of the checkpoint entry's own prev_hash. */
export function verifyCheckpointSignature(
  backend: CryptoBackend,
  entry: RecorderEntry,
  checkpoint: Checkpoint,
  publicKey: Uint8Array,
): boolean {
  const signature = /^[0-9a-f]{128}$/.test(checkpoint.signature)
    ? fromHex(checkpoint.signature)
    : undefined;
  return (
    signature !== undefined && backend.ed25519Verify(publicKey, utf8(entry.prev_hash), signature)
  );
}

/** Signs a checkpoint: lowercase hex Ed25519 over the prev_hash the checkpoint entry will carry. */
export function signCheckpoint(backend: CryptoBackend, seed: Uint8Array, prevHash: string): string {
  return toHex(backend.ed25519Sign(seed, utf8(prevHash)));
}
