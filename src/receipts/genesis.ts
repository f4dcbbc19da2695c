// Bound session-open genesis (`g1:`): the first receipt of a chain commits to its signed
// session_open payload, so the head of a chain cannot be swapped or truncated unnoticed.
import type { SessionOpen } from './action-record.js';
import { concatBytes, toHex, uint64BigEndian, utf8 } from './bytes.js';
import type { CryptoBackend } from './crypto.js';

export const LEGACY_GENESIS = 'genesis';
export const BOUND_GENESIS_PREFIX = 'g1:';
const SESSION_OPEN_LABEL = 'pipelock.receipt.session_open.v1';

function frame(bytes: Uint8Array): Uint8Array {
  return concatBytes(uint64BigEndian(BigInt(bytes.length)), bytes);
}

/**
 * `g1:` + hex SHA-256 over length-framed open fields. prior_*, chain_open_seq, genesis_hash and
 * posture_signer_key_id are deliberately not part of it.
 */
export function sessionOpenGenesis(backend: CryptoBackend, open: SessionOpen): string {
  const heartbeat = open.heartbeat_seconds > 0n ? open.heartbeat_seconds : 0n;
  const fields = [
    SESSION_OPEN_LABEL,
    open.run_nonce,
    open.open_nonce,
    open.recorder_session,
    open.policy_hash,
    open.signer_key_epoch,
  ].map((s) => frame(utf8(s)));
  fields.push(frame(uint64BigEndian(heartbeat)));
  for (const s of [
    open.genesis_anchor_head,
    open.genesis_anchor_log,
    open.posture_capsule_sha256,
    open.containment_nonce,
    open.contained_uid,
  ]) {
    fields.push(frame(utf8(s ?? '')));
  }
  return BOUND_GENESIS_PREFIX + toHex(backend.sha256(concatBytes(...fields)));
}

export function isBoundGenesis(prevHash: string): boolean {
  return prevHash.startsWith(BOUND_GENESIS_PREFIX);
}
