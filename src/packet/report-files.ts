// packet.json and summary.md, the packet's two files written from the receipts rather than
// signed: the writer makes them with this, and the packet check remakes them with it to
// compare. Pure.
import type { VerificationReport } from '../cli/verification-report.js';
import { policyDetectors } from '../engine/dlp/detectors.js';
import { encodePipelockPublicKey } from '../receipts/index.js';
import type { Policy } from '../policy/index.js';
import type { EngineLogFacts } from './engine-log.js';
import {
  encodeSorted,
  packetJson,
  UNSUPPORTED_PATHS,
  type PacketPolicy,
  type PacketPosture,
  type PacketRun,
} from './packet-json.js';
import type { ChainSummary } from './summarize.js';
import { summaryMarkdown } from './summary-md.js';

export function packetPolicy(policy: Policy, path: string): PacketPolicy {
  return {
    path,
    mode: policy.mode,
    dlpPatterns: policyDetectors(policy).length,
    websocketFrameScan: policy.websocket.enabled && policy.websocket.frame_scan,
    hash: policy.hash,
  };
}

export interface ReportFilesInput {
  readonly summary: ChainSummary;
  readonly report: VerificationReport;
  /** The key verification pinned; absent when nothing was pinned. */
  readonly pinnedKey: Uint8Array | undefined;
  readonly run: PacketRun;
  readonly posture: PacketPosture;
  readonly policy: PacketPolicy;
  readonly generatedAt: string;
  readonly engineLog: EngineLogFacts;
}

export interface ReportFiles {
  readonly packetJson: string;
  readonly summaryMarkdown: string;
}

export function reportFiles(input: ReportFilesInput): ReportFiles {
  const { summary, report, run, policy } = input;
  const json = packetJson({
    generatedAt: input.generatedAt,
    run,
    summary,
    report,
    ...(input.pinnedKey === undefined
      ? {}
      : { pinnedKey: encodePipelockPublicKey(input.pinnedKey).trim() }),
    posture: input.posture,
    policy,
  });
  return {
    packetJson: encodeSorted(json),
    summaryMarkdown: summaryMarkdown({
      report,
      summary,
      agentExitCode: run.agentExitCode,
      agentIdentity: run.agentIdentity,
      policyMode: policy.mode,
      policyHash: policy.hash,
      unsupported: UNSUPPORTED_PATHS,
      engineLog: input.engineLog,
    }),
  };
}
