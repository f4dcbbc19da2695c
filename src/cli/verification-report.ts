// verification-report.json: the machine-readable outcome of `verify` (DESIGN §6, §7).
import type { EvidenceReport, TornTail } from '../receipts/index.js';

/** `valid` needs a pinned key; `self_consistent_only` is a chain that only agrees with itself. */
export type Verdict = 'valid' | 'self_consistent_only' | 'invalid' | 'error';

export interface VerificationReport {
  readonly verdict: Verdict;
  readonly trusted: boolean;
  readonly sealed: boolean;
  readonly receipt_count: number;
  readonly final_seq: bigint | null;
  readonly root_hash: string | null;
  readonly start_time: string | null;
  readonly end_time: string | null;
  readonly signer_keys: readonly string[];
  readonly policy_hashes: readonly string[];
  /** Null when no expected policy hash was given or the chain could not be read to its end. */
  readonly policy_hash_match: boolean | null;
  readonly broken_at_seq: bigint | null;
  /** An unfinished last line (the writer stopped mid-write), reported and not verified. */
  readonly torn_tail: TornTail | null;
  readonly error: string | null;
}

export function verificationReport(
  verdict: Verdict,
  chain: EvidenceReport | undefined,
  policyHashMatch: boolean | null,
  error: string | undefined,
): VerificationReport {
  return {
    verdict,
    trusted: verdict === 'valid',
    sealed: chain?.sealed ?? false,
    receipt_count: chain?.receipt_count ?? 0,
    final_seq: chain?.final_seq ?? null,
    root_hash: chain?.root_hash ?? null,
    start_time: chain?.start_time ?? null,
    end_time: chain?.end_time ?? null,
    signer_keys: chain?.signer_keys ?? [],
    policy_hashes: chain?.policy_hashes ?? [],
    policy_hash_match: policyHashMatch,
    broken_at_seq: chain?.broken_at_seq ?? null,
    torn_tail: chain?.torn_tail ?? null,
    error: error ?? null,
  };
}

/** JSON with sequence numbers as exact integers (they are uint64). */
export function encodeVerificationReport(report: VerificationReport): string {
  const text = JSON.stringify(
    report,
    (_key, value: unknown) => (typeof value === 'bigint' ? `\u0000bigint:${value}` : value),
    2,
  );
  return `${text.replace(/"\\u0000bigint:([0-9]+)"/g, '$1')}\n`;
}

/** verification-report.json as `encodeVerificationReport` wrote it. */
export function parseVerificationReport(text: string): VerificationReport {
  const parsed = JSON.parse(text) as Omit<VerificationReport, 'final_seq'> & {
    final_seq: number | null;
  };
  return { ...parsed, final_seq: parsed.final_seq === null ? null : BigInt(parsed.final_seq) };
}
