// verification-report.json against the chain as verified now: every field the report holds is
// derived from the chain, so each must be what verifying it again gives. Pure.
import type { Judgement } from '../../cli/judge.js';
import {
  verificationReport,
  type Verdict,
  type VerificationReport,
} from '../../cli/verification-report.js';
import type { EvidenceReport } from '../../receipts/index.js';
import { PACKET_FILES } from '../packet-json.js';
import { shortened } from '../../shorten.js';
import { mismatch, ok, unread, type FileCheck, type FileFact } from './file-check.js';

const VERIFIED: ReadonlySet<Verdict> = new Set(['valid', 'self_consistent_only']);

/**
 * What the run's `verify` should have recorded. Whether the run pinned its key is not in the
 * chain: one that verifies may have been recorded valid (pinned) or self_consistent_only, and
 * is compared as recorded on that one point.
 */
function expectedReport(
  recorded: Verdict,
  report: EvidenceReport,
  judgement: Judgement,
): VerificationReport {
  const verdict =
    VERIFIED.has(recorded) && VERIFIED.has(judgement.verdict) ? recorded : judgement.verdict;
  return verificationReport(verdict, report, judgement.policyHashMatch, judgement.error);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function shown(value: unknown): string {
  return shortened(
    typeof value === 'object' && value !== null ? canonical(value) : String(value),
    80,
  );
}

export function reportCheck(
  recordedReport: FileFact<VerificationReport>,
  report: EvidenceReport,
  judgement: Judgement,
): FileCheck {
  const file = PACKET_FILES.verifier;
  if (recordedReport.kind !== 'read') return unread(file, recordedReport);
  const recorded = recordedReport.value;
  const expected = expectedReport(recorded.verdict, report, judgement);
  const differing = (Object.keys(expected) as (keyof VerificationReport)[]).filter(
    (key) => canonical(recorded[key]) !== canonical(expected[key]),
  );
  if (differing.length === 0)
    return ok(file, `recorded verdict ${recorded.verdict}; every field as the chain verifies now`);
  return mismatch(
    file,
    differing
      .map((key) => `${key} ${shown(recorded[key])}, verified ${shown(expected[key])}`)
      .join('; '),
  );
}
