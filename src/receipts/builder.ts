// Append-only production of a receipt chain: fills in chain_seq / chain_prev_hash, binds the
// `g1:` genesis and session control payloads, signs, and returns bytes. No I/O.
import type {
  ActionRecord,
  KeyTransition,
  SessionClose,
  SessionHeartbeat,
  SessionOpen,
} from './action-record.js';
import type { CryptoBackend } from './crypto.js';
import { toHex } from './bytes.js';
import type { RotationEndorsement } from './endorsement.js';
import { signRotationEndorsement } from './endorsement.js';
import { LEGACY_GENESIS, sessionOpenGenesis } from './genesis.js';
import { parseGoTime } from './go-time.js';
import { parseJson } from './json.js';
import type { Receipt } from './receipt.js';
import { encodeReceipt, receiptHashOf, signReceipt, validateReceipt } from './receipt.js';

/** What the caller decides; the builder owns version, chain fields, run binding and control. */
export type ReceiptFields = Omit<
  ActionRecord,
  'version' | 'chain_prev_hash' | 'chain_seq' | 'run_nonce' | 'session_control' | 'key_transition'
>;

export type SessionOpenFields = Omit<
  SessionOpen,
  'chain_open_seq' | 'prior_chain_head' | 'prior_chain_seq' | 'genesis_hash'
>;
export type HeartbeatFields = Pick<SessionHeartbeat, 'beat' | 'heartbeat_time'> &
  Partial<Pick<SessionHeartbeat, 'fsync_errors_gated' | 'durability_blocks'>>;
export type CloseFields = Pick<SessionClose, 'close_reason'> &
  Partial<Pick<SessionClose, 'fsync_errors_gated' | 'durability_blocks'>>;

export interface BuiltReceipt {
  readonly receipt: Receipt;
  /** The receipt as Go marshals it: the `detail` of its recorder entry. */
  readonly json: string;
  /** Its receipt hash: the next receipt's chain_prev_hash. */
  readonly hash: string;
}

interface ActiveRun {
  readonly runNonce: string;
  readonly openNonce: string;
}

export class ReceiptChainBuilder {
  private seed: Uint8Array;
  private nextSeq = 0n;
  private prevHash = LEGACY_GENESIS;
  private started = false;
  private segmentCount = 0;
  private run: ActiveRun | undefined;

  constructor(
    private readonly backend: CryptoBackend,
    seed: Uint8Array,
  ) {
    this.seed = seed;
  }

  /**
   * Continues an existing, unrotated chain whose last receipt is `tail` (after a crash): the
   * next receipt links to it, and the next `openSession` is a restart bound to it.
   */
  static resume(
    backend: CryptoBackend,
    seed: Uint8Array,
    tail: { readonly finalSeq: bigint; readonly rootHash: string },
  ): ReceiptChainBuilder {
    const builder = new ReceiptChainBuilder(backend, seed);
    builder.started = true;
    builder.nextSeq = tail.finalSeq + 1n;
    builder.prevHash = tail.rootHash;
    builder.segmentCount = Number(tail.finalSeq + 1n);
    return builder;
  }

  /** The public key (64 hex) currently signing. */
  get signerKey(): string {
    return toHex(this.backend.ed25519PublicKey(this.seed));
  }

  /** Hash of the last receipt (`genesis` before the first). */
  get head(): string {
    return this.prevHash;
  }

  /** Appends a decision receipt, bound to the open run (if any). `ext` must be JSON text. */
  append(fields: ReceiptFields, ext?: string): BuiltReceipt {
    return this.sign(fields, {}, ext);
  }

  /**
   * Opens a run: on an empty chain this is the bound `g1:` genesis; later it is a restart bound
   * to the current tail.
   */
  openSession(fields: ReceiptFields, open: SessionOpenFields, ext?: string): BuiltReceipt {
    const bound: SessionOpen = this.started
      ? {
          ...open,
          chain_open_seq: this.nextSeq,
          prior_chain_head: this.prevHash,
          prior_chain_seq: this.nextSeq - 1n,
        }
      : { ...open, chain_open_seq: 0n };
    const withGenesis: SessionOpen = this.started
      ? bound
      : { ...bound, genesis_hash: sessionOpenGenesis(this.backend, bound) };
    if (!this.started) this.prevHash = withGenesis.genesis_hash ?? LEGACY_GENESIS;
    this.run = { runNonce: open.run_nonce, openNonce: open.open_nonce };
    return this.sign(
      fields,
      { run_nonce: open.run_nonce, session_control: { kind: 'session_open', open: withGenesis } },
      ext,
    );
  }

  heartbeat(fields: ReceiptFields, beat: HeartbeatFields): BuiltReceipt {
    const run = this.requireRun('heartbeat');
    const heartbeat: SessionHeartbeat = {
      run_nonce: run.runNonce,
      open_nonce: run.openNonce,
      beat: beat.beat,
      chain_head: this.prevHash,
      chain_seq_head: this.nextSeq - 1n,
      heartbeat_time: beat.heartbeat_time,
      fsync_errors_gated: beat.fsync_errors_gated ?? 0n,
      durability_blocks: beat.durability_blocks ?? 0n,
    };
    return this.sign(fields, { session_control: { kind: 'heartbeat', heartbeat } });
  }

  /** Closes the run with a receipt that commits to the chain so far (seals it). */
  close(fields: ReceiptFields, closing: CloseFields): BuiltReceipt {
    const run = this.requireRun('session_close');
    const close: SessionClose = {
      run_nonce: run.runNonce,
      open_nonce: run.openNonce,
      final_seq: this.nextSeq,
      root_hash: this.prevHash,
      receipt_count: BigInt(this.segmentCount + 1),
      close_reason: closing.close_reason,
      fsync_errors_gated: closing.fsync_errors_gated ?? 0n,
      durability_blocks: closing.durability_blocks ?? 0n,
    };
    const built = this.sign(fields, { session_control: { kind: 'session_close', close } });
    this.run = undefined;
    return built;
  }

  /**
   * Hands the chain to a new key: returns the old key's endorsement of the new one, and the new
   * segment's first receipt (a restart session_open carrying the key_transition marker).
   */
  rotate(
    newSeed: Uint8Array,
    fields: ReceiptFields,
    open: SessionOpenFields,
    endorsement: { readonly sessionId: string; readonly rotatedAt: string },
  ): { endorsement: RotationEndorsement; first: BuiltReceipt } {
    if (!this.started) throw new Error('cannot rotate the key of an empty chain');
    const priorKey = this.signerKey;
    const priorSeq = this.nextSeq - 1n;
    const signed = signRotationEndorsement(this.backend, this.seed, {
      session_id: endorsement.sessionId,
      prior_signer_key: priorKey,
      prior_final_seq: priorSeq,
      prior_tail_hash: this.prevHash,
      new_signer_key: toHex(this.backend.ed25519PublicKey(newSeed)),
      rotated_at: endorsement.rotatedAt,
    });
    const marker: KeyTransition = {
      prior_signer_key: priorKey,
      prior_chain_seq: priorSeq,
      prior_chain_hash: this.prevHash,
    };
    this.seed = newSeed;
    this.nextSeq = 0n;
    this.segmentCount = 0;
    this.run = { runNonce: open.run_nonce, openNonce: open.open_nonce };
    const opened: SessionOpen = {
      ...open,
      chain_open_seq: 0n,
      prior_chain_head: this.prevHash,
      prior_chain_seq: priorSeq,
    };
    const first = this.sign(fields, {
      run_nonce: open.run_nonce,
      key_transition: marker,
      session_control: { kind: 'session_open', open: opened },
    });
    return { endorsement: signed, first };
  }

  private requireRun(what: string): ActiveRun {
    if (!this.run) throw new Error(`${what} needs an open session`);
    return this.run;
  }

  private sign(
    fields: ReceiptFields,
    chainFields: Pick<ActionRecord, 'run_nonce' | 'session_control' | 'key_transition'>,
    ext?: string,
  ): BuiltReceipt {
    const record: ActionRecord = {
      version: 1,
      ...fields,
      chain_prev_hash: this.prevHash,
      chain_seq: this.nextSeq,
      ...(this.run ? { run_nonce: this.run.runNonce } : {}),
      ...chainFields,
    };
    if (ext !== undefined && !parseJson(ext).ok)
      throw new Error('cannot sign receipt: ext is not valid JSON');
    const receipt = signReceipt(this.backend, this.seed, record, ext);
    if (!parseGoTime(fields.timestamp).ok)
      throw new Error(
        `cannot sign receipt: timestamp ${JSON.stringify(fields.timestamp)} is not RFC 3339`,
      );
    const valid = validateReceipt(receipt);
    if (!valid.ok) throw new Error(`cannot sign receipt: ${valid.failure.message}`);
    const json = encodeReceipt(receipt);
    const hash = receiptHashOf(this.backend, json);
    this.prevHash = hash;
    this.nextSeq++;
    this.segmentCount++;
    this.started = true;
    return { receipt, json, hash };
  }
}
