// Does each file of an Audit Packet agree with the evidence it was written from? Only the
// receipts are signed; these checks tie the other files to them. Pure.
import type { EvidenceReport } from '../../receipts/index.js';
import type { Judgement } from '../../cli/judge.js';
import type { Verdict, VerificationReport } from '../../cli/verification-report.js';
import { ENGINE_LOG, EVIDENCE_DIR, PACKET_ENTRIES, PACKET_FILES } from '../packet-json.js';
import type { EvidenceDirFacts } from './evidence-dir.js';
import { derivedChecks, type DerivedFacts } from './derived-checks.js';
import { reportCheck } from './report-check.js';
import { mismatch, ok, unread, type FileCheck, type FileFact } from './file-check.js';
import type { FileDigest } from './read-facts.js';

export interface PacketFacts {
  /** The names in the packet's directory. */
  readonly entries: readonly string[];
  readonly report: EvidenceReport;
  readonly judgement: Judgement;
  readonly evidenceDir: FileFact<EvidenceDirFacts>;
  /** SHA-256 of policy.yaml. */
  readonly policyFileHash: FileFact<string>;
  /** The hash policy-hash.txt states. */
  readonly policyHashText: FileFact<string>;
  /** receipts.json's length (and SHA-256 when that is as expected), and what the verified chain gives. */
  readonly receiptsFile: FileFact<{ readonly bytes: number; readonly sha256: string | undefined }>;
  readonly receiptsExpected: FileDigest;
  /** The key signer-public-key.pem holds (64 hex). */
  readonly signerKey: FileFact<string>;
  readonly recordedReport: FileFact<VerificationReport>;
  /** What packet.json and summary.md are remade from (the recorded report is the one above). */
  readonly derived: Omit<DerivedFacts, 'recordedReport'>;
}

function chainPolicy(report: EvidenceReport): string {
  return report.policy_hashes.join(', ') || '(no receipts)';
}

function evidenceCheck({ report, judgement }: PacketFacts): FileCheck {
  const file = 'evidence.jsonl';
  if (judgement.verdict === 'valid' || judgement.verdict === 'self_consistent_only') {
    return ok(
      file,
      `${report.receipt_count} receipts verified with the recorder entries, checkpoints and transcript root; sealed`,
    );
  }
  return mismatch(file, judgement.error ?? 'does not verify');
}

function evidenceDirCheck({ evidenceDir }: PacketFacts): FileCheck {
  const file = `${EVIDENCE_DIR}/`;
  if (evidenceDir.kind !== 'read') return unread(file, evidenceDir);
  const { files, difference } = evidenceDir.value;
  if (difference !== undefined) return mismatch(file, difference);
  const [first, last] = [files[0] ?? '', files.at(-1) ?? ''];
  return ok(
    file,
    files.length === 1
      ? `${first} is ${PACKET_FILES.evidence} byte for byte`
      : `${first} … ${last} (${files.length} files), joined in order, are ${PACKET_FILES.evidence} byte for byte`,
  );
}

/** policy.yaml's hash, or policy-hash.txt's text, must be the one policy hash of the chain. */
function policyBindingCheck(
  file: string,
  fact: FileFact<string>,
  report: EvidenceReport,
  matches: string,
  differs: (value: string) => string,
): FileCheck {
  if (fact.kind !== 'read') return unread(file, fact);
  if (report.policy_hashes.length === 1 && report.policy_hashes[0] === fact.value) {
    return ok(file, matches);
  }
  return mismatch(file, `${differs(fact.value)}; the receipts carry ${chainPolicy(report)}`);
}

function receiptsCheck(facts: PacketFacts): FileCheck {
  const file = 'receipts.json';
  const found = facts.receiptsFile;
  if (found.kind !== 'read') return unread(file, found);
  if (!facts.report.valid) {
    return { file, status: 'unchecked', detail: 'the chain in evidence.jsonl does not verify' };
  }
  const expected = facts.receiptsExpected;
  if (found.value.bytes !== expected.bytes) {
    return mismatch(
      file,
      `is not the receipts of evidence.jsonl (${found.value.bytes} bytes where they make ${expected.bytes})`,
    );
  }
  if (found.value.sha256 === expected.sha256) {
    return ok(file, 'the receipts of evidence.jsonl, byte for byte');
  }
  return mismatch(file, 'is not the receipts of evidence.jsonl');
}

function signerCheck({ signerKey, report }: PacketFacts): FileCheck {
  const file = 'signer-public-key.pem';
  if (signerKey.kind !== 'read') return unread(file, signerKey);
  const signers = report.signer_keys;
  if (signers.length === 1 && signers[0] === signerKey.value) {
    return ok(file, 'the key that signed every receipt');
  }
  return mismatch(
    file,
    `holds ${signerKey.value}; the receipts are signed by ${signers.join(', ') || '(no receipts)'}`,
  );
}

/** The engine's log is not signed: it is only read, for what summary.md counts from it. */
function engineLogCheck({ derived }: PacketFacts): FileCheck {
  if (derived.engineLog.kind !== 'read') return unread(ENGINE_LOG, derived.engineLog);
  return ok(ENGINE_LOG, 'read for what summary.md counts from it (not signed)');
}

/** Anything else there was put there later: a reader could take it for part of the packet. */
function contentsCheck({ entries }: PacketFacts): FileCheck {
  const file = './';
  const others = entries.filter((name) => !PACKET_ENTRIES.has(name));
  if (others.length === 0) return ok(file, 'only the files a run writes');
  return mismatch(file, `holds ${others.join(', ')}, which no run writes`);
}

export function packetChecks(facts: PacketFacts): FileCheck[] {
  return [
    evidenceCheck(facts),
    evidenceDirCheck(facts),
    receiptsCheck(facts),
    policyBindingCheck(
      'policy.yaml',
      facts.policyFileHash,
      facts.report,
      'its SHA-256 is the policy_hash every receipt carries',
      (hash) => `its SHA-256 is ${hash}`,
    ),
    policyBindingCheck(
      'policy-hash.txt',
      facts.policyHashText,
      facts.report,
      'states the policy_hash every receipt carries',
      (hash) => `states ${hash}`,
    ),
    signerCheck(facts),
    reportCheck(facts.recordedReport, facts.report, facts.judgement),
    ...derivedChecks({ ...facts.derived, recordedReport: facts.recordedReport }),
    engineLogCheck(facts),
    contentsCheck(facts),
  ];
}

export interface PacketVerdict {
  readonly verdict: Verdict;
  readonly error?: string;
}

/** The chain's verdict, unless a file of the packet says something the chain does not. */
export function packetVerdict(judgement: Judgement, checks: readonly FileCheck[]): PacketVerdict {
  if (judgement.verdict === 'invalid' || judgement.verdict === 'error') {
    return { verdict: judgement.verdict, ...(judgement.error ? { error: judgement.error } : {}) };
  }
  const failing = checks.filter((check) => check.status !== 'ok').map((check) => check.file);
  if (failing.length === 0) return { verdict: judgement.verdict };
  return {
    verdict: 'invalid',
    error: `the packet's ${failing.join(', ')} ${failing.length === 1 ? 'does' : 'do'} not match the verified chain`,
  };
}
