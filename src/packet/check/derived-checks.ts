// packet.json and summary.md are not signed: a run writes them from the verified receipts, the
// policy, the verification report, the engine log and its own statements (packet.json's run
// and posture, which the chain binds: run-binding.ts). The check remakes both from the same
// parts, the receipts as verified now, and compares them byte for byte. Pure.
import type { VerificationReport } from '../../cli/verification-report.js';
import type { Policy } from '../../policy/index.js';
import type { EngineLogFacts } from '../engine-log.js';
import { ENGINE_LOG, PACKET_FILES, POLICY_FILE, THIS_ENGINE } from '../packet-json.js';
import { packetPolicy, reportFiles, type ReportFiles } from '../report-files.js';
import type { ChainSummary } from '../summarize.js';
import { shortened } from '../../shorten.js';
import { jsonDifferences } from './json-differences.js';
import { parsePacketStatements, type PacketStatements } from './packet-statements.js';
import { runBinding } from './run-binding.js';
import { mismatch, ok, unread, type FileCheck, type FileFact } from './file-check.js';

export interface DerivedFacts {
  /** The chain in evidence.jsonl verified (the summary counts all of it). */
  readonly chainVerified: boolean;
  readonly summary: ChainSummary;
  /** The chain's signing key, when one key signed it all. */
  readonly signer: Uint8Array | undefined;
  readonly policy: FileFact<Policy>;
  readonly recordedReport: FileFact<VerificationReport>;
  readonly engineLog: FileFact<EngineLogFacts>;
  readonly packetJson: FileFact<string>;
  readonly summaryMarkdown: FileFact<string>;
}

function unchecked(file: string, detail: string): FileCheck {
  return { file, status: 'unchecked', detail };
}

interface RemakeParts {
  readonly policy: Policy;
  readonly report: VerificationReport;
  readonly engineLog: EngineLogFacts;
}

function needs(file: string, fact: Exclude<FileFact<unknown>, { kind: 'read' }>): string {
  return fact.kind === 'missing'
    ? `needs ${file}, which is not in the packet`
    : `needs ${file}: ${fact.error}`;
}

/** The parts to remake the files from, or why they cannot be remade. */
function remakeParts(facts: DerivedFacts): RemakeParts | string {
  if (!facts.chainVerified) return 'the chain in evidence.jsonl does not verify';
  const { policy, recordedReport, engineLog } = facts;
  if (policy.kind !== 'read') return needs(POLICY_FILE, policy);
  if (recordedReport.kind !== 'read') return needs(PACKET_FILES.verifier, recordedReport);
  if (engineLog.kind !== 'read') return needs(ENGINE_LOG, engineLog);
  return { policy: policy.value, report: recordedReport.value, engineLog: engineLog.value };
}

function remake(
  statements: PacketStatements,
  parts: RemakeParts,
  facts: DerivedFacts,
): ReportFiles {
  return reportFiles({
    summary: facts.summary,
    report: parts.report,
    pinnedKey: statements.namesPinnedKey ? facts.signer : undefined,
    run: statements.run,
    posture: statements.posture,
    policy: packetPolicy(parts.policy, statements.configPath),
    generatedAt: statements.generatedAt,
    engineLog: parts.engineLog,
  });
}

function packetJsonDifference(actual: string, expected: string): string {
  const differences = jsonDifferences(JSON.parse(actual), JSON.parse(expected));
  return differences.length > 0
    ? differences.join('; ')
    : 'the same values, but not written as a run writes them (key order or spacing)';
}

function firstDifferentLine(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  const index = a.findIndex((line, i) => line !== e[i]);
  const at = index === -1 ? a.length : index;
  const shown = (line: string | undefined): string =>
    line === undefined ? '(the end)' : JSON.stringify(shortened(line, 80));
  return `line ${at + 1} is ${shown(a[at])}, should be ${shown(e[at])}`;
}

/**
 * A file remade by another version than wrote it may differ in its wording alone: a mismatch
 * says so, and which version to check it with.
 */
function acrossVersions(check: FileCheck, writtenBy: string): FileCheck {
  if (check.status !== 'mismatch' || writtenBy === THIS_ENGINE) return check;
  return {
    ...check,
    detail: `${check.detail} (written by ${writtenBy}, remade by ${THIS_ENGINE}: check it with ${writtenBy} before calling it changed)`,
  };
}

export function derivedChecks(facts: DerivedFacts): [FileCheck, FileCheck] {
  const packetFile = PACKET_FILES.packet;
  const summaryFile = PACKET_FILES.summary;
  const { packetJson, summaryMarkdown: summary } = facts;
  const summaryNot = (detail: string): FileCheck =>
    summary.kind === 'read' ? unchecked(summaryFile, detail) : unread(summaryFile, summary);
  if (packetJson.kind !== 'read')
    return [unread(packetFile, packetJson), summaryNot(`needs ${packetFile}'s run`)];
  const parts = remakeParts(facts);
  if (typeof parts === 'string') return [unchecked(packetFile, parts), summaryNot(parts)];
  const statements = parsePacketStatements(packetJson.value);
  if (!statements.ok) {
    return [
      mismatch(packetFile, `not as a run writes it: ${statements.error}`),
      summaryNot(`needs ${packetFile}'s run`),
    ];
  }
  const remade = remake(statements.value, parts, facts);
  const binding = runBinding(statements.value, facts.summary);
  const packetCheck =
    packetJson.value !== remade.packetJson
      ? mismatch(packetFile, packetJsonDifference(packetJson.value, remade.packetJson))
      : (binding.mismatch ??
        ok(
          packetFile,
          `every count, hash and verdict as the verified receipts, policy.yaml and verification-report.json give them; ${
            binding.bound
              ? "the run (repository, workflow, commit, agent, script, engine) as the chain's session open binds it; times, exit code, users and proxy address are the runner's own statements"
              : "the agent as the receipts name it; the chain does not bind the rest of run and posture: they are the runner's own statements"
          }`,
        ));
  const writtenBy = statements.value.posture.engine;
  if (summary.kind !== 'read')
    return [acrossVersions(packetCheck, writtenBy), unread(summaryFile, summary)];
  const summaryCheck =
    summary.value === remade.summaryMarkdown
      ? ok(
          summaryFile,
          'as the run writes it from the verified receipts, packet.json and engine.log',
        )
      : mismatch(summaryFile, firstDifferentLine(summary.value, remade.summaryMarkdown));
  return [acrossVersions(packetCheck, writtenBy), acrossVersions(summaryCheck, writtenBy)];
}
