// verification-report.json: the machine-readable outcome of `verify` (DESIGN §6, §7).
import * as z from 'zod';
import type { EvidenceReport, TornTail } from '../receipts/index.js';
import { readJsonDocument, type DocumentReading } from '../json-document.js';

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
export function encodeVerificationReport<R extends VerificationReport>(report: R): string {
  const text = JSON.stringify(
    report,
    (_key, value: unknown) => (typeof value === 'bigint' ? `\u0000bigint:${value}` : value),
    2,
  );
  return `${text.replace(/"\\u0000bigint:([0-9]+)"/g, '$1')}\n`;
}

const seq = z
  .number()
  .int()
  .nonnegative()
  .nullable()
  .transform((value) => (value === null ? null : BigInt(value)));
const nullableText = z.string().nullable();

const reportSchema = z.object({
  verdict: z.enum(['valid', 'self_consistent_only', 'invalid', 'error']),
  trusted: z.boolean(),
  sealed: z.boolean(),
  receipt_count: z.number().int().nonnegative(),
  final_seq: seq,
  root_hash: nullableText,
  start_time: nullableText,
  end_time: nullableText,
  signer_keys: z.array(z.string()),
  policy_hashes: z.array(z.string()),
  policy_hash_match: z.boolean().nullable(),
  broken_at_seq: seq,
  torn_tail: z.object({ where: z.string(), bytes: z.number().int().nonnegative() }).nullable(),
  error: nullableText,
});

/** verification-report.json as `encodeVerificationReport` writes it, or what is wrong with it. */
export function readVerificationReport(text: string): DocumentReading<VerificationReport> {
  return readJsonDocument(reportSchema, text);
}

/** verification-report.json as `verify` just wrote it. */
export function parseVerificationReport(text: string): VerificationReport {
  const read = readVerificationReport(text);
  if (!read.ok) throw new Error(`verification-report.json: ${read.error}`);
  return read.value;
}
