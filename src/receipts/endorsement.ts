// Rotation endorsements: the outgoing key signs which key takes over a session's receipt chain,
// at which tail. They authorise a key_transition boundary without pinning the new key.
import { concatBytes, fromHex, isLowerHex, toHex, utf8 } from './bytes.js';
import type { CryptoBackend } from './crypto.js';
import type { Outcome } from './failure.js';
import { fail } from './failure.js';
import { goString } from './go-json.js';
import { formatRfc3339Nano, parseGoTime, toUtc } from './go-time.js';
import type { StructSchema } from './go-struct.js';
import { decodeStruct, StructureError, UINT64 } from './go-struct.js';
import { parseJson, rawText } from './json.js';
import { SIGNATURE_PREFIX } from './receipt.js';

export interface RotationEndorsement {
  readonly version: number;
  readonly session_id: string;
  readonly prior_signer_key: string;
  readonly prior_final_seq: bigint;
  readonly prior_tail_hash: string;
  readonly new_signer_key: string;
  readonly rotated_at: string;
  readonly endorsement: string;
}

export type UnsignedRotationEndorsement = Omit<RotationEndorsement, 'endorsement' | 'version'>;

const MAX_ENDORSEMENT_BYTES = 64 * 1024;
const DOMAIN = 'pipelock-rotation-endorsement-v1\0';

const SCHEMA: StructSchema = {
  fields: [
    {
      key: 'version',
      kind: { type: 'smallint', min: -(2 ** 53 - 1), max: 2 ** 53 - 1, goType: 'int' },
      required: true,
    },
    { key: 'session_id', kind: { type: 'string' }, required: true },
    { key: 'prior_signer_key', kind: { type: 'string' }, required: true },
    { key: 'prior_final_seq', kind: UINT64, required: true },
    { key: 'prior_tail_hash', kind: { type: 'string' }, required: true },
    { key: 'new_signer_key', kind: { type: 'string' }, required: true },
    { key: 'rotated_at', kind: { type: 'string' }, required: true },
    { key: 'endorsement', kind: { type: 'string' }, required: true },
  ],
};

/** Parses and checks an endorsement file's shape (not its signature: see verifyRotationEndorsement). */
export function parseRotationEndorsement(text: string): Outcome<RotationEndorsement> {
  const bad = (message: string): ReturnType<typeof fail> =>
    fail('rotation', `rotation endorsement: ${message}`);
  if (utf8(text).length > MAX_ENDORSEMENT_BYTES)
    return bad(`larger than ${MAX_ENDORSEMENT_BYTES} bytes`);
  const parsed = parseJson(text);
  if (!parsed.ok) return bad(parsed.error);
  let value;
  try {
    value = decodeStruct(parsed.doc, parsed.doc.root, SCHEMA, 'endorsement');
  } catch (err) {
    if (err instanceof StructureError) return bad(err.message);
    throw err;
  }
  for (const field of SCHEMA.fields) {
    if (value[field.key] === undefined) return bad(`missing field ${field.key}`);
  }
  const e = value as unknown as RotationEndorsement;
  if (e.version !== 1) return bad(`unsupported version ${e.version} (expected 1)`);
  if (e.session_id === '') return bad('session_id is required');
  for (const key of ['prior_signer_key', 'prior_tail_hash', 'new_signer_key'] as const) {
    if (!isLowerHex(e[key], 64)) return bad(`${key} must be 64 lowercase hex characters`);
  }
  if (e.prior_signer_key === e.new_signer_key)
    return bad('prior_signer_key and new_signer_key must differ');
  const rotatedAtNode =
    parsed.doc.root.kind === 'object' ? parsed.doc.root.members.get('rotated_at') : undefined;
  const time = parseGoTime(rotatedAtNode ? rawText(parsed.doc, rotatedAtNode).slice(1, -1) : '');
  if (!time.ok || formatRfc3339Nano(toUtc(time.time)) !== e.rotated_at) {
    return bad(`rotated_at ${JSON.stringify(e.rotated_at)} is not a canonical UTC RFC 3339 time`);
  }
  if (
    !e.endorsement.startsWith(SIGNATURE_PREFIX) ||
    !isLowerHex(e.endorsement.slice(SIGNATURE_PREFIX.length), 128)
  ) {
    return bad('endorsement must be "ed25519:" followed by 128 lowercase hex characters');
  }
  return { ok: true, value: e };
}

// Go-JSON of the seven signed fields, without the closing brace.
function signedFields(e: UnsignedRotationEndorsement): string {
  return (
    `{"version":1,"session_id":${goString(e.session_id)},"prior_signer_key":${goString(e.prior_signer_key)}` +
    `,"prior_final_seq":${e.prior_final_seq},"prior_tail_hash":${goString(e.prior_tail_hash)}` +
    `,"new_signer_key":${goString(e.new_signer_key)},"rotated_at":${goString(e.rotated_at)}`
  );
}

function endorsementDigest(backend: CryptoBackend, e: UnsignedRotationEndorsement): Uint8Array {
  return backend.sha256(concatBytes(utf8(DOMAIN), utf8(signedFields(e) + '}')));
}

/** Checks that the prior (outgoing) key signed this endorsement. */
export function verifyRotationEndorsement(
  backend: CryptoBackend,
  e: RotationEndorsement,
): Outcome<RotationEndorsement> {
  const key = fromHex(e.prior_signer_key);
  const signature = fromHex(e.endorsement.slice(SIGNATURE_PREFIX.length));
  if (!key || !signature || !backend.ed25519Verify(key, endorsementDigest(backend, e), signature)) {
    return fail('rotation', 'rotation endorsement: signature verification failed');
  }
  return { ok: true, value: e };
}

/** Signs an endorsement with the outgoing key's 32-byte seed. */
export function signRotationEndorsement(
  backend: CryptoBackend,
  priorSeed: Uint8Array,
  unsigned: UnsignedRotationEndorsement,
): RotationEndorsement {
  const signature = backend.ed25519Sign(priorSeed, endorsementDigest(backend, unsigned));
  return { version: 1, ...unsigned, endorsement: SIGNATURE_PREFIX + toHex(signature) };
}

/** The endorsement file as JSON text. */
export function encodeRotationEndorsement(e: RotationEndorsement): string {
  return `${signedFields(e)},"endorsement":${goString(e.endorsement)}}\n`;
}
