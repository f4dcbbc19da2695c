// ActionReceipt v1 envelopes: decoding with Pipelock's strictness, the action record rules,
// Ed25519 over SHA-256(canonical action_record), the receipt hash that links a chain, and signing.
import type { ActionRecord } from './action-record.js';
import { ACTION_RECORD_SCHEMA, ACTION_TYPES, canonicalActionRecord } from './action-record.js';
import { fromHex, toHex } from './bytes.js';
import type { CryptoBackend } from './crypto.js';
import type { Outcome } from './failure.js';
import { fail, goQuote } from './failure.js';
import { GO_ZERO_TIMESTAMP } from './go-time.js';
import type { GoStruct, StructSchema } from './go-struct.js';
import { decodeStruct, encodeStruct, StructureError } from './go-struct.js';
import type { JsonDocument, JsonNode } from './json.js';
import { parseJson } from './json.js';

export const SIGNATURE_PREFIX = 'ed25519:';

export interface Receipt {
  readonly version: number;
  readonly action_record: ActionRecord;
  /** `ed25519:` + 128 hex. */
  readonly signature: string;
  /** 64 hex (the 32-byte Ed25519 public key). */
  readonly signer_key: string;
  /**
   * Source text of the unsigned `ext` value, when the key is present (even as `null`). Kept
   * verbatim because the receipt hash covers it as written, not as re-serialised.
   */
  readonly ext?: string;
}

const RECEIPT_SCHEMA: StructSchema = {
  fields: [
    {
      key: 'version',
      kind: { type: 'smallint', min: -(2 ** 53 - 1), max: 2 ** 53 - 1, goType: 'int' },
      required: true,
    },
    {
      key: 'action_record',
      kind: { type: 'struct', schema: ACTION_RECORD_SCHEMA },
      required: true,
    },
    { key: 'signature', kind: { type: 'string' }, required: true },
    { key: 'signer_key', kind: { type: 'string' }, required: true },
    { key: 'ext', kind: { type: 'raw' }, required: false },
  ],
};

/** Decodes a receipt object node (structure and types only; see validateReceipt for the rules). */
export function decodeReceipt(doc: JsonDocument, node: JsonNode): Outcome<Receipt> {
  try {
    const envelope = decodeStruct(doc, node, RECEIPT_SCHEMA, 'receipt');
    const record = envelope['action_record'];
    const ext = envelope['ext'];
    const receipt: Receipt = {
      version: typeof envelope['version'] === 'number' ? envelope['version'] : 0,
      action_record: withZeroRequired(
        typeof record === 'object' && record !== null ? (record as GoStruct) : {},
      ),
      signature: typeof envelope['signature'] === 'string' ? envelope['signature'] : '',
      signer_key: typeof envelope['signer_key'] === 'string' ? envelope['signer_key'] : '',
      ...(typeof ext === 'string' ? { ext } : {}),
    };
    return { ok: true, value: receipt };
  } catch (err) {
    if (err instanceof StructureError)
      return fail('malformed', `unmarshal receipt: ${err.message}`);
    throw err;
  }
}

/** Parses one receipt from JSON text. */
export function parseReceipt(text: string): Outcome<Receipt> {
  const parsed = parseJson(text);
  if (!parsed.ok) return fail('malformed', `unmarshal receipt: ${parsed.error}`);
  return decodeReceipt(parsed.doc, parsed.doc.root);
}

// Go decodes into a zeroed struct, so an absent required field reads as its zero value.
function withZeroRequired(record: GoStruct): ActionRecord {
  return {
    version: 0,
    action_id: '',
    action_type: '',
    timestamp: GO_ZERO_TIMESTAMP,
    principal: '',
    actor: '',
    target: '',
    side_effect_class: '',
    reversibility: '',
    policy_hash: '',
    verdict: '',
    transport: '',
    chain_prev_hash: '',
    chain_seq: 0n,
    ...(record as unknown as Partial<ActionRecord>),
  };
}

/** Pipelock's receipt rules (Go ActionRecord.Validate order and texts). */
export function validateReceipt(receipt: Receipt): Outcome<Receipt> {
  const ar = receipt.action_record;
  if (receipt.version !== 1)
    return fail('invalid_record', `unsupported receipt version ${receipt.version} (expected 1)`);
  if (ar.version !== 1)
    return invalidRecord(`unsupported action record version ${ar.version} (expected 1)`);
  if (ar.action_id === '') return invalidRecord('action_id is required');
  if (!(ACTION_TYPES as readonly string[]).includes(ar.action_type)) {
    return invalidRecord(`invalid action_type ${goQuote(ar.action_type)}`);
  }
  if (ar.timestamp === GO_ZERO_TIMESTAMP) return invalidRecord('timestamp is required');
  if (ar.target === '') return invalidRecord('target is required');
  if (ar.verdict === '') return invalidRecord('verdict is required');
  if (ar.transport === '') return invalidRecord('transport is required');
  const control = ar.session_control;
  if (control) {
    const payloads = {
      session_open: control.open,
      heartbeat: control.heartbeat,
      session_close: control.close,
    };
    if (Object.values(payloads).filter((p) => p !== undefined).length !== 1) {
      return invalidRecord('session_control must carry exactly one payload');
    }
    if (!Object.keys(payloads).includes(control.kind)) {
      return invalidRecord(`unknown session_control kind ${goQuote(control.kind)}`);
    }
    if (payloads[control.kind as keyof typeof payloads] === undefined) {
      return invalidRecord(
        `session_control kind ${goQuote(control.kind)} does not match its payload`,
      );
    }
  }
  return { ok: true, value: receipt };
}

function invalidRecord(message: string): ReturnType<typeof fail> {
  return fail('invalid_record', `invalid action record: ${message}`);
}

/** SHA-256 of the canonical action record: the 32 bytes that are actually signed. */
export function actionRecordDigest(backend: CryptoBackend, record: ActionRecord): Uint8Array {
  return backend.sha256(canonicalActionRecord(record));
}

/**
 * Checks the signature in Go's VerifyWithKey order. With `trustedKeys` (non-empty), the signer
 * must be one of them (exact string compare, as Go does).
 */
export function verifyReceiptSignature(
  backend: CryptoBackend,
  receipt: Receipt,
  trustedKeys?: readonly string[],
): Outcome<Receipt> {
  if (receipt.signature === '') return fail('signature', 'receipt has no signature');
  if (receipt.signer_key === '') return fail('signature', 'receipt has no signer_key');
  if (
    trustedKeys !== undefined &&
    trustedKeys.length > 0 &&
    !trustedKeys.includes(receipt.signer_key)
  ) {
    return fail('untrusted_key', untrustedSignerMessage(receipt.signer_key, trustedKeys.length));
  }
  const key = decodeHexField('signer_key', receipt.signer_key, 32);
  if (!key.ok) return key;
  if (!receipt.signature.startsWith(SIGNATURE_PREFIX)) {
    return fail('signature', 'invalid signature format: missing ed25519: prefix');
  }
  const signature = decodeHexField(
    'signature',
    receipt.signature.slice(SIGNATURE_PREFIX.length),
    64,
  );
  if (!signature.ok) return signature;
  const digest = actionRecordDigest(backend, receipt.action_record);
  if (!backend.ed25519Verify(key.value, digest, signature.value)) {
    return fail('signature', 'signature verification failed');
  }
  return { ok: true, value: receipt };
}

/**
 * Go's wording names the expected key; ours does not. A pinned key is whatever the caller
 * gave, and a private key given by mistake (its 64-hex seed reads as a public key) must not
 * end up in a log or a report. The signer's key is public.
 */
function untrustedSignerMessage(signer: string, pinned: number): string {
  return pinned === 1
    ? `signer_key ${signer} does not match the pinned key (1 given; not shown: it may be a secret key)`
    : `signer key ${signer} is not in the trusted set (${pinned} pinned keys given; not shown: one may be a secret key)`;
}

function decodeHexField(name: string, text: string, length: number): Outcome<Uint8Array> {
  const bytes = fromHex(text);
  if (bytes === undefined) return fail('signature', `decoding ${name}: ${goHexError(text)}`);
  // Go would decode upper-case digits too, but no signer writes them, and the receipt hash covers
  // the text: accepting them would let anyone re-spell the last receipt and move the chain head.
  if (/[A-F]/.test(text))
    return fail('signature', `invalid ${name}: hex digits must be lower-case`);
  if (bytes.length !== length) {
    return fail('signature', `invalid ${name} length: got ${bytes.length}, want ${length}`);
  }
  return { ok: true, value: bytes };
}

// Go's encoding/hex error texts.
function goHexError(text: string): string {
  const bad = /[^0-9a-fA-F]/.exec(text);
  if (bad) {
    const ch = bad[0];
    const code = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return `encoding/hex: invalid byte: U+${code} ${goQuoteRune(ch)}`;
  }
  return 'encoding/hex: odd length hex string';
}

function goQuoteRune(ch: string): string {
  return ch === "'" ? "'\\''" : `'${ch}'`;
}

/** Validates the record rules, then the signature (what `verify-receipt FILE` does). */
export function verifyReceipt(
  backend: CryptoBackend,
  receipt: Receipt,
  trustedKeys?: readonly string[],
): Outcome<Receipt> {
  const valid = validateReceipt(receipt);
  if (!valid.ok) return valid;
  return verifyReceiptSignature(backend, receipt, trustedKeys);
}

/**
 * The receipt as Go marshals it: version, canonical action_record, signature, signer_key, then
 * `ext` (compacted source text) when present. These are the bytes written into the recorder entry
 * and hashed into the next receipt's chain_prev_hash.
 */
export function encodeReceipt(receipt: Receipt): string {
  return encodeStruct(receipt as unknown as GoStruct, RECEIPT_SCHEMA);
}

/** Lowercase hex SHA-256 of the encoded receipt: the next receipt's `chain_prev_hash`. */
export function receiptHash(backend: CryptoBackend, receipt: Receipt): string {
  return receiptHashOf(backend, encodeReceipt(receipt));
}

/** `receiptHash` of a receipt already encoded by `encodeReceipt`. */
export function receiptHashOf(backend: CryptoBackend, encoded: string): string {
  return toHex(backend.sha256(encoded));
}

/** Signs an action record with a 32-byte Ed25519 seed. `ext`, if given, must be JSON text. */
export function signReceipt(
  backend: CryptoBackend,
  seed: Uint8Array,
  record: ActionRecord,
  ext?: string,
): Receipt {
  const signature = backend.ed25519Sign(seed, actionRecordDigest(backend, record));
  return {
    version: 1,
    action_record: record,
    signature: SIGNATURE_PREFIX + toHex(signature),
    signer_key: toHex(backend.ed25519PublicKey(seed)),
    ...(ext === undefined ? {} : { ext }),
  };
}
