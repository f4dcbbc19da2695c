// From a verifier's report to a verdict, as `verify` and the action decide it: a broken or empty
// chain, an unsealed one under --require-sealed, a policy hash other than the expected one, and a
// chain no pinned key vouches for. Pure.
import type { EvidenceReport } from '../receipts/index.js';
import type { Verdict } from './verification-report.js';

export interface JudgeOptions {
  readonly requireSealed: boolean;
  readonly allowUnpinned: boolean;
  /** Every receipt must carry this policy hash. */
  readonly expectedPolicy: string | undefined;
}

export interface Judgement {
  readonly verdict: Verdict;
  /** The exit code `verify` gives this verdict. */
  readonly code: number;
  readonly error?: string;
  readonly policyHashMatch: boolean | null;
  /** Why a chain that holds together is still refused (shown as CHAIN BROKEN). */
  readonly unsealed?: boolean;
}

export function judgeEvidence(report: EvidenceReport, options: JudgeOptions): Judgement {
  if (!report.valid) {
    const error = report.error?.message ?? 'chain is not valid';
    const empty = report.error?.class === 'empty';
    return { verdict: empty ? 'error' : 'invalid', code: 1, error, policyHashMatch: null };
  }
  const { expectedPolicy } = options;
  const policyHashMatch =
    expectedPolicy === undefined
      ? null
      : report.policy_hashes.length === 1 &&
        samePolicyHash(report.policy_hashes[0] ?? '', expectedPolicy);
  if (options.requireSealed && !report.sealed) {
    return {
      verdict: 'invalid',
      code: 1,
      error: 'chain is not sealed: it does not end in a signed session_close (--require-sealed)',
      policyHashMatch,
      unsealed: true,
    };
  }
  if (policyHashMatch === false) {
    const seen = report.policy_hashes.join(', ');
    return {
      verdict: 'invalid',
      code: 1,
      error: `policy hash mismatch: receipts carry ${seen}, expected ${expectedPolicy ?? ''}`,
      policyHashMatch,
    };
  }
  if (!report.pinned) {
    return {
      verdict: 'self_consistent_only',
      code: options.allowUnpinned ? 0 : 1,
      policyHashMatch,
    };
  }
  return { verdict: 'valid', code: 0, policyHashMatch };
}

/** Pipelock's receipts may write the hash as `sha256:HEX`; ours, and sha256sum, as `HEX`. */
function samePolicyHash(carried: string, expected: string): boolean {
  const digest = (hash: string): string => hash.replace(/^sha256:/, '');
  return digest(carried) === digest(expected);
}
