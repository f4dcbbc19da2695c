// `verify --packet DIR`: a whole Audit Packet checked as the action checks its own, without a
// browser: the chain in evidence.jsonl (whole recorder, sealed, the packet's policy hash, the
// pinned keys), then every other file against it. Exit 0 only if all of it holds.
import { join } from 'node:path';
import { checkPacket, type CheckedPacket } from '../packet/check/check-packet.js';
import type { CheckStatus, FileCheck } from '../packet/check/file-check.js';
import { packetVerdict } from '../packet/check/packet-checks.js';
import { PACKET_FILES } from '../packet/packet-json.js';
import { showInvisible, terminalText } from '../invisible.js';
import { describeChain } from './chain-text.js';
import type { CliIo } from './io.js';
import { openPacket, type PacketArguments } from './open-packet.js';
import {
  verificationReport,
  type Verdict,
  type VerificationReport,
} from './verification-report.js';

export interface PacketRequest extends PacketArguments {
  readonly allowUnpinned: boolean;
}

/** verification-report.json's fields for the packet, with what each file's check found. */
export interface PacketReport extends VerificationReport {
  readonly files: readonly FileCheck[];
}

export interface VerifiedPacket {
  readonly code: number;
  readonly report: PacketReport;
}

export const PREFIX = 'pipelock-egress verify';

const STATUS_LABELS: Readonly<Record<CheckStatus, string>> = {
  ok: 'ok',
  mismatch: 'MISMATCH',
  missing: 'MISSING',
  unchecked: 'UNCHECKED',
};

const HEADINGS: Readonly<Record<Verdict, string>> = {
  valid: 'PACKET VALID',
  self_consistent_only: 'PACKET UNPINNED',
  invalid: 'PACKET INVALID',
  error: 'PACKET INVALID',
};

function describeFiles(
  dir: string,
  verdict: Verdict,
  error: string | undefined,
  checks: readonly FileCheck[],
): string {
  const width = Math.max(...checks.map((check) => check.file.length));
  const lines = [`${HEADINGS[verdict]}: ${dir}`];
  if (error !== undefined) lines.push(`  Error: ${error}`);
  for (const check of checks) {
    lines.push(
      `  ${STATUS_LABELS[check.status].padEnd(9)} ${check.file.padEnd(width)}  ${check.detail}`,
    );
  }
  // Details quote the packet (a key, a line of summary.md): nothing in it reaches the terminal raw.
  return terminalText(lines);
}

function judged(checked: CheckedPacket, allowUnpinned: boolean): VerifiedPacket {
  const { verdict, error } = packetVerdict(checked.judgement, checked.checks);
  const code = verdict === 'valid' || (verdict === 'self_consistent_only' && allowUnpinned) ? 0 : 1;
  return {
    code,
    report: {
      ...verificationReport(verdict, checked.report, checked.judgement.policyHashMatch, error),
      files: checked.checks,
    },
  };
}

/** The report of a packet that could not be checked at all. */
function unreadablePacketReport(error: string): PacketReport {
  return { ...verificationReport('error', undefined, null, error), files: [] };
}

export async function verifyPacket(request: PacketRequest, io: CliIo): Promise<VerifiedPacket> {
  const opened = await openPacket(PREFIX, request, io, checkPacket);
  if (!opened.ok) {
    io.err(`${PREFIX}: ${showInvisible(opened.error)}\n`);
    return { code: 2, report: unreadablePacketReport(opened.error) };
  }
  const checked = opened.packet;
  const outcome = judged(checked, request.allowUnpinned);
  io.out(
    describeChain(
      join(request.dir, PACKET_FILES.evidence),
      checked.report,
      checked.judgement,
      checked.expectedPolicy,
    ),
  );
  io.out(
    describeFiles(
      request.dir,
      outcome.report.verdict,
      outcome.report.error ?? undefined,
      checked.checks,
    ),
  );
  return outcome;
}
