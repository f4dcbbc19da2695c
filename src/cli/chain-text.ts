// The text `verify` prints about a chain, in the layout of Pipelock's verifier: CHAIN VALID
// (or UNPINNED) with its counts, hashes, signers and seal, or CHAIN BROKEN and where, with
// nothing the evidence holds printed raw. Pure.
import type { EvidenceReport } from '../receipts/index.js';
import type { Judgement } from './judge.js';
import { terminalText } from '../invisible.js';

export function describeChain(
  label: string,
  report: EvidenceReport,
  judged: Judgement,
  expectedPolicy: string | undefined,
): string {
  if (report.error?.class === 'empty') return `No receipts found in ${label}\n`;
  if (!report.valid || judged.unsealed) {
    const lines = [`CHAIN BROKEN: ${label}`, `  Error:    ${judged.error ?? ''}`];
    if (report.broken_at_seq !== undefined) lines.push(`  Broke at: seq ${report.broken_at_seq}`);
    lines.push('  Sealed:   no');
    return terminalText(lines);
  }
  const lines = [
    `${report.pinned ? 'CHAIN VALID' : 'CHAIN UNPINNED'}: ${label}`,
    `  Receipts:  ${report.receipt_count}`,
    `  Final seq: ${report.final_seq ?? ''}`,
    `  Root hash: ${report.root_hash ?? ''}`,
    `  Start:     ${report.start_time ?? ''}`,
    `  End:       ${report.end_time ?? ''}`,
  ];
  if (report.segments.length <= 1) {
    lines.push(`  Signer:    ${report.signer_keys[0] ?? ''}`);
  } else {
    lines.push(`  Segments:  ${report.segments.length} (signing key rotated)`);
    report.segments.forEach((s, i) =>
      lines.push(
        `    segment ${i + 1}: seq ${s.first_seq}-${s.last_seq}  signer ${s.signer_key}${i > 0 ? '  (key rotation)' : ''}`,
      ),
    );
  }
  lines.push(`  Sealed:    ${report.sealed ? 'yes' : 'no'}`);
  if (report.torn_tail) {
    lines.push(
      `  Torn tail: ${report.torn_tail.where} (${report.torn_tail.bytes} bytes of a line the writer did not finish; not verified)`,
    );
  }
  if (judged.policyHashMatch === false) {
    lines.push(
      `POLICY MISMATCH: receipts carry policy_hash ${report.policy_hashes.join(', ')}; expected ${expectedPolicy ?? ''}`,
    );
  }
  return terminalText(lines);
}
