// Verifies an ActionReceipt v1 chain the way Pipelock's verifiers do (spec §5): trust anchor,
// genesis, hash links and sequence, key rotation segments, and the session lifecycle.
import type { ActionRecord, SessionOpen } from './action-record.js';
import type { CryptoBackend } from './crypto.js';
import type { RotationEndorsement } from './endorsement.js';
import { verifyRotationEndorsement } from './endorsement.js';
import type { Failure, FailureClass } from './failure.js';
import { goQuote } from './failure.js';
import { isBoundGenesis, LEGACY_GENESIS, sessionOpenGenesis } from './genesis.js';
import { compareUtf8 } from './go-struct.js';
import type { Receipt } from './receipt.js';
import {
  encodeReceipt,
  receiptHashOf,
  validateReceipt,
  verifyReceiptSignature,
} from './receipt.js';

export const DEFAULT_SESSION_ID = 'proxy';

export interface ChainOptions {
  /** Pinned public keys (64 hex). None: trust on first use (the report says `pinned: false`). */
  readonly trustedKeys?: readonly string[];
  /** Endorsements that authorise key rotations (already parsed). */
  readonly endorsements?: readonly RotationEndorsement[];
  /** Recorder session the endorsements and signed session_open receipts must name. */
  readonly sessionId?: string;
  /**
   * Called with each receipt the chain accepted, in order, as it is accepted, with its
   * canonical encoding and receipt hash. A later receipt may still break the chain (the report
   * says where).
   */
  readonly onAccepted?: AcceptedReceipt;
}

export type AcceptedReceipt = (receipt: Receipt, encoded: string, hash: string) => void;

export interface ChainSegment {
  readonly signer_key: string;
  readonly first_seq: bigint;
  readonly last_seq: bigint;
  readonly receipt_count: number;
}

export interface ChainReport {
  readonly valid: boolean;
  /** The chain is anchored in a key the caller pinned (not just self-consistent). */
  readonly pinned: boolean;
  readonly error?: Failure;
  /** chain_seq of the receipt that broke the chain (segment-local after a rotation). */
  readonly broken_at_seq?: bigint;
  /** Receipts examined: all of them, or up to and including the one that broke the chain. */
  readonly receipt_count: number;
  readonly final_seq?: bigint;
  /** Receipt hash of the last receipt: what a trusted head or a session close must match. */
  readonly root_hash?: string;
  readonly start_time?: string;
  readonly end_time?: string;
  readonly signer_keys: readonly string[];
  readonly segments: readonly ChainSegment[];
  /** Sorted, unique policy_hash values seen. */
  readonly policy_hashes: readonly string[];
  /** The chain ends in a signed session_close that matches it, so a dropped tail would show. */
  readonly sealed: boolean;
}

interface Run {
  readonly openNonce: string;
  closed: boolean;
}

class ChainBreak extends Error {
  constructor(
    readonly cls: FailureClass,
    message: string,
  ) {
    super(message);
  }
}

function breakChain(cls: FailureClass, message: string): never {
  throw new ChainBreak(cls, message);
}

/**
 * Verifies a chain one receipt at a time. What it keeps grows with the key segments, the runs
 * (run_nonce) and the distinct policy hashes, not with the receipts, so evidence of any length
 * can be streamed through it.
 */
export class ChainVerifier {
  private readonly walker: ChainWalker;
  private readonly pinned: boolean;
  private readonly trusted: readonly string[];
  private readonly segments: ChainSegment[] = [];
  private readonly policyHashes = new Set<string>();
  private count = 0;
  private first: ActionRecord | undefined;
  private last: ActionRecord | undefined;
  private failure: Failure | undefined;
  private brokenAt: bigint | undefined;
  private finished = false;
  /** A single receipt judged on its own: it seals nothing, even a session_close. */
  private alone = false;
  private readonly onAccepted: AcceptedReceipt | undefined;

  constructor(backend: CryptoBackend, options: ChainOptions = {}) {
    this.onAccepted = options.onAccepted;
    this.trusted = (options.trustedKeys ?? []).map((key) => key.toLowerCase());
    this.pinned = this.trusted.length > 0;
    const endorsements = options.endorsements ?? [];
    this.walker = new ChainWalker(
      backend,
      this.trusted,
      endorsements,
      options.sessionId ?? DEFAULT_SESSION_ID,
      this.segments,
    );
    for (const e of endorsements) {
      const checked = verifyRotationEndorsement(backend, e);
      if (!checked.ok) {
        this.failure = checked.failure;
        break;
      }
    }
  }

  /** False once the chain is broken: nothing fed afterwards can repair it. */
  get intact(): boolean {
    return this.failure === undefined;
  }

  /** Keys whose signatures the chain has accepted so far, plus the pinned ones. */
  get authorisedKeys(): readonly string[] {
    return [...new Set([...this.trusted, ...this.segments.map((s) => s.signer_key)])];
  }

  /** Feeds the next receipt; returns `intact`. Receipts after a break are not examined. */
  push(receipt: Receipt): boolean {
    return this.take(receipt, () => this.walker.step(receipt));
  }

  /** The one receipt of a single-receipt input, judged on its own (no chain around it). */
  pushAlone(receipt: Receipt): boolean {
    this.alone = true;
    return this.take(receipt, () => this.walker.stepAlone(receipt));
  }

  private take(receipt: Receipt, step: () => void): boolean {
    if (this.failure) return false;
    this.count++;
    try {
      step();
    } catch (err) {
      if (!(err instanceof ChainBreak)) throw err;
      const seq = receipt.action_record.chain_seq;
      this.failure = { class: err.cls, message: `seq ${seq}: ${err.message}` };
      this.brokenAt = seq;
      return false;
    }
    this.first ??= receipt.action_record;
    this.last = receipt.action_record;
    this.policyHashes.add(receipt.action_record.policy_hash);
    this.onAccepted?.(receipt, this.walker.lastEncoded, this.walker.prevHash);
    return true;
  }

  /** The report on the receipts fed so far, as if the chain ended here. */
  report(): ChainReport {
    const base = {
      pinned: this.pinned,
      receipt_count: this.count,
      signer_keys: [...new Set(this.segments.map((s) => s.signer_key))],
      segments: [...this.segments],
      policy_hashes: [...this.policyHashes].sort(compareUtf8),
      sealed: false,
    };
    if (this.failure) {
      return {
        ...base,
        valid: false,
        error: this.failure,
        ...(this.brokenAt === undefined ? {} : { broken_at_seq: this.brokenAt }),
      };
    }
    if (!this.first || !this.last) {
      return { ...base, valid: false, error: { class: 'empty', message: 'no receipts found' } };
    }
    return {
      ...base,
      valid: true,
      final_seq: this.last.chain_seq,
      root_hash: this.walker.prevHash,
      start_time: this.first.timestamp,
      end_time: this.last.timestamp,
      sealed: !this.alone && this.last.session_control?.kind === 'session_close',
    };
  }

  /** Ends the chain: checks what only the end can show (unused endorsements), then reports. */
  finish(): ChainReport {
    if (!this.finished && !this.failure && this.count > 0) {
      try {
        this.walker.finish();
      } catch (err) {
        if (!(err instanceof ChainBreak)) throw err;
        this.failure = { class: err.cls, message: err.message };
      }
    }
    this.finished = true;
    return this.report();
  }
}

export function verifyChain(
  backend: CryptoBackend,
  receipts: Iterable<Receipt>,
  options: ChainOptions = {},
): ChainReport {
  const verifier = new ChainVerifier(backend, options);
  for (const receipt of receipts) if (!verifier.push(receipt)) break;
  return verifier.finish();
}

class ChainWalker {
  prevHash = '';
  /** The canonical encoding of the last receipt accepted, whose hash is prevHash. */
  lastEncoded = '';
  private prevSeq = 0n;
  private index = 0;
  private segmentKey = '';
  private segmentStart = 0;
  private rootHasOpen = false;
  private readonly runs = new Map<string, Run>();
  /** The run of the last session_open not yet closed: heartbeats and the close speak for it. */
  private active: { readonly runNonce: string; readonly openNonce: string } | undefined;
  private readonly usedEndorsements = new Set<RotationEndorsement>();

  constructor(
    private readonly backend: CryptoBackend,
    private readonly trusted: readonly string[],
    private readonly endorsements: readonly RotationEndorsement[],
    private readonly sessionId: string,
    private readonly segments: ChainSegment[],
  ) {}

  step(receipt: Receipt): void {
    const ar = receipt.action_record;
    const valid = validateReceipt(receipt);
    if (!valid.ok) breakChain(valid.failure.class, valid.failure.message);

    const rotation = this.index > 0 && ar.key_transition !== undefined;
    if (this.index === 0) this.checkRoot(receipt);
    else if (rotation) this.checkRotation(receipt);
    else if (ar.chain_seq === 0n)
      breakChain('chain', 'unexpected seq 0 without a key_transition boundary');
    if (this.index > 0 && ar.session_control?.kind === 'session_open') this.checkRestart(ar);
    if (ar.session_control?.open && this.endorsements.length > 0) {
      const recorder = ar.session_control.open.recorder_session;
      if (recorder !== this.sessionId) {
        breakChain(
          'rotation',
          `session_open recorder_session ${goQuote(recorder)} does not match session ${goQuote(this.sessionId)}`,
        );
      }
    }

    if (this.index === 0 || rotation) {
      this.segmentKey = receipt.signer_key;
      this.segmentStart = this.index;
      this.segments.push({
        signer_key: receipt.signer_key,
        first_seq: ar.chain_seq,
        last_seq: ar.chain_seq,
        receipt_count: 0,
      });
    }
    this.checkSignature(
      receipt,
      this.index === 0 && this.trusted.length > 0 ? this.trusted : [this.segmentKey],
    );

    const expectedSeq = BigInt(this.index - this.segmentStart);
    if (ar.chain_seq !== expectedSeq)
      breakChain('chain', `seq gap: expected ${expectedSeq}, got ${ar.chain_seq}`);
    if (this.index > 0 && ar.chain_prev_hash !== this.prevHash)
      breakChain('chain', 'chain_prev_hash mismatch');

    this.checkLifecycle(ar);
    this.accept(receipt);
  }

  /**
   * A receipt on its own, as Pipelock's `verify-receipt FILE` takes one: valid in itself and
   * signed (by a pinned key, if any), wherever it stood in its chain.
   */
  stepAlone(receipt: Receipt): void {
    const valid = validateReceipt(receipt);
    if (!valid.ok) breakChain(valid.failure.class, valid.failure.message);
    this.checkSignature(receipt, this.trusted.length > 0 ? this.trusted : [receipt.signer_key]);
    const seq = receipt.action_record.chain_seq;
    this.segments.push({
      signer_key: receipt.signer_key,
      first_seq: seq,
      last_seq: seq,
      receipt_count: 0,
    });
    this.accept(receipt);
  }

  private checkSignature(receipt: Receipt, trusted: readonly string[]): void {
    const signed = verifyReceiptSignature(this.backend, receipt, trusted);
    if (!signed.ok) {
      breakChain(
        signed.failure.class,
        signed.failure.class === 'signature'
          ? `signature: ${signed.failure.message}`
          : signed.failure.message,
      );
    }
  }

  private accept(receipt: Receipt): void {
    const ar = receipt.action_record;
    const segment = this.segments[this.segments.length - 1];
    if (segment)
      this.segments[this.segments.length - 1] = {
        ...segment,
        last_seq: ar.chain_seq,
        receipt_count: segment.receipt_count + 1,
      };
    if (ar.session_control?.kind === 'session_open' && this.segments.length === 1)
      this.rootHasOpen = true;
    this.lastEncoded = encodeReceipt(receipt);
    this.prevHash = receiptHashOf(this.backend, this.lastEncoded);
    this.prevSeq = ar.chain_seq;
    this.index++;
  }

  finish(): void {
    const unused = this.endorsements.find((e) => !this.usedEndorsements.has(e));
    if (unused)
      breakChain('rotation', 'unused rotation endorsement does not match a required boundary');
  }

  private checkRoot(receipt: Receipt): void {
    const ar = receipt.action_record;
    if (ar.key_transition)
      breakChain('rotation', 'chain starts at a key_transition segment without the prior segment');
    if (ar.chain_seq !== 0n)
      breakChain('genesis', 'root receipt segment must start at chain_seq 0');
    const open = ar.session_control?.kind === 'session_open' ? ar.session_control.open : undefined;
    if (isBoundGenesis(ar.chain_prev_hash)) {
      if (!open) breakChain('genesis', 'g1 chain_prev_hash requires SessionControl.Open');
      this.checkBoundGenesis(ar, open);
    } else if (ar.chain_prev_hash === LEGACY_GENESIS) {
      if (open)
        breakChain('genesis', 'session_open on legacy genesis must use bound g1 chain_prev_hash');
    } else {
      breakChain('genesis', 'chain_prev_hash mismatch');
    }
  }

  private checkBoundGenesis(ar: ActionRecord, open: SessionOpen): void {
    const genesis = sessionOpenGenesis(this.backend, open);
    if (ar.chain_prev_hash !== genesis) breakChain('genesis', 'session_open genesis hash mismatch');
    if (open.genesis_hash !== genesis) breakChain('genesis', 'session_open genesis_hash mismatch');
    if (open.chain_open_seq !== ar.chain_seq)
      breakChain('genesis', 'session_open chain_open_seq does not match receipt chain_seq');
    if (priorHead(open) !== '' || priorSeq(open) !== 0n) {
      breakChain('genesis', 'bound genesis session_open must not carry prior chain tail');
    }
  }

  // A session_open after the first receipt is a restart: it must bind to the tail it continues.
  private checkRestart(ar: ActionRecord): void {
    const open = ar.session_control?.open;
    if (!open) return;
    if (isBoundGenesis(ar.chain_prev_hash))
      breakChain('genesis', 'restart session_open must not use a g1 chain_prev_hash');
    if ((open.genesis_hash ?? '') !== '')
      breakChain('genesis', 'restart session_open must not carry genesis_hash');
    if (open.chain_open_seq !== ar.chain_seq)
      breakChain('genesis', 'session_open chain_open_seq does not match receipt chain_seq');
    if (priorHead(open) !== this.prevHash) {
      breakChain('genesis', 'restart session_open prior_chain_head does not match prior tail hash');
    }
    if (priorSeq(open) !== this.prevSeq) {
      breakChain(
        'genesis',
        'restart session_open prior_chain_seq does not match prior receipt chain_seq',
      );
    }
  }

  private checkRotation(receipt: Receipt): void {
    const ar = receipt.action_record;
    const marker = ar.key_transition;
    if (!marker) return;
    if (ar.chain_seq !== 0n)
      breakChain('rotation', 'key_transition marker on a non-genesis receipt (seq != 0)');
    if (marker.prior_chain_hash !== this.prevHash) {
      breakChain(
        'rotation',
        'key_transition prior_chain_hash does not match actual prior tail hash',
      );
    }
    if (ar.chain_prev_hash !== this.prevHash)
      breakChain('rotation', 'segment-genesis chain_prev_hash does not match prior tail hash');
    if (marker.prior_signer_key !== this.segmentKey) {
      breakChain('rotation', 'key_transition prior_signer_key does not match prior segment key');
    }
    if (marker.prior_chain_seq !== this.prevSeq) {
      breakChain(
        'rotation',
        'key_transition prior_chain_seq does not match prior segment final seq',
      );
    }
    const matches = this.endorsements.filter(
      (e) =>
        e.session_id === this.sessionId &&
        e.prior_signer_key === this.segmentKey &&
        e.prior_final_seq === this.prevSeq &&
        e.prior_tail_hash === this.prevHash &&
        e.new_signer_key === receipt.signer_key,
    );
    if (matches.length > 1)
      breakChain('rotation', 'multiple rotation endorsements match one receipt boundary');
    const endorsement = matches[0];
    if (endorsement) {
      if (!this.rootHasOpen)
        breakChain('rotation', 'root receipt segment has no signed session_open recorder binding');
      this.usedEndorsements.add(endorsement);
    } else if (!this.trusted.includes(receipt.signer_key)) {
      if (this.endorsements.length > 0)
        breakChain('rotation', 'rotation endorsement does not match receipt boundary');
      breakChain('untrusted_key', `signer key ${receipt.signer_key} is not in the trusted set`);
    }
  }

  private checkLifecycle(ar: ActionRecord): void {
    const control = ar.session_control;
    const runNonce = ar.run_nonce ?? '';
    if (control && runNonce === '')
      breakChain('lifecycle', 'session_control receipt missing run_nonce');
    if (runNonce === '') return;
    if (control?.open) {
      const open = control.open;
      if (open.run_nonce !== runNonce)
        breakChain('lifecycle', 'session_open run_nonce does not match receipt run_nonce');
      if (open.open_nonce === '') breakChain('lifecycle', 'session_open missing open_nonce');
      if (this.runs.has(runNonce)) breakChain('lifecycle', 'duplicate session_open for run_nonce');
      this.runs.set(runNonce, { openNonce: open.open_nonce, closed: false });
      this.active = { runNonce, openNonce: open.open_nonce };
      return;
    }
    const run = this.runs.get(runNonce);
    if (!run) breakChain('lifecycle', 'run_nonce first receipt is not a matching session_open');
    if (run.closed) breakChain('lifecycle', 'record observed after session_close');
    const beat = control?.heartbeat;
    if (beat) {
      if (beat.run_nonce !== runNonce) breakChain('lifecycle', 'heartbeat run_nonce mismatch');
      if (beat.open_nonce !== run.openNonce)
        breakChain('lifecycle', 'heartbeat open_nonce mismatch');
      this.checkActive('heartbeat', beat);
      if (beat.chain_head !== ar.chain_prev_hash)
        breakChain('lifecycle', 'heartbeat chain_head mismatch');
      if (beat.chain_seq_head !== ar.chain_seq - 1n)
        breakChain('lifecycle', 'heartbeat chain_seq_head mismatch');
    }
    const close = control?.close;
    if (close) {
      const segmentCount = BigInt(this.index - this.segmentStart + 1);
      if (close.run_nonce !== runNonce) breakChain('lifecycle', 'session_close run_nonce mismatch');
      if (close.open_nonce !== run.openNonce)
        breakChain('lifecycle', 'session_close open_nonce mismatch');
      this.checkActive('session_close', close);
      if (close.root_hash !== ar.chain_prev_hash)
        breakChain('lifecycle', 'session_close root_hash mismatch');
      if (close.final_seq !== ar.chain_seq)
        breakChain('lifecycle', 'session_close final_seq mismatch');
      if (close.receipt_count !== segmentCount)
        breakChain('lifecycle', 'session_close receipt_count mismatch');
      run.closed = true;
      this.active = undefined;
    }
  }

  /** A heartbeat or close speaks for the run open now, not an earlier one still registered. */
  private checkActive(
    kind: 'heartbeat' | 'session_close',
    nonces: { readonly run_nonce: string; readonly open_nonce: string },
  ): void {
    if (this.active === undefined) breakChain('lifecycle', `${kind} has no active session_open`);
    if (nonces.run_nonce !== this.active.runNonce)
      breakChain('lifecycle', `${kind} run_nonce does not match active session_open`);
    if (nonces.open_nonce !== this.active.openNonce)
      breakChain('lifecycle', `${kind} open_nonce does not match active session_open`);
  }
}

// Go's fields are values: absent (omitted when empty) and zero are one. A restart after the
// session open at seq 0 binds to seq 0, which is spelled by leaving the field out.
const priorHead = (open: SessionOpen): string => open.prior_chain_head ?? '';
const priorSeq = (open: SessionOpen): bigint => open.prior_chain_seq ?? 0n;
