// The Audit Packet around the evidence a run collected, as `run` writes it: the files
// verification reads, then `verify` over them as a reviewer would run it (its report kept),
// then packet.json and summary.md.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKET_FILES, POLICY_HASH_FILE } from '../packet/packet-json.js';
import {
  writePacketEvidence,
  writePacketReport,
  type PacketReport,
} from '../packet/write-packet.js';
import type { CliIo } from './io.js';
import { parseVerificationReport, type VerificationReport } from './verification-report.js';
import { verifyCommand } from './verify-command.js';

export interface AuditPacket extends Omit<
  PacketReport,
  'summary' | 'report' | 'pinnedKey' | 'generatedAt'
> {
  readonly policyBytes: Uint8Array;
  /** The key that signed the evidence. */
  readonly publicKey: Uint8Array;
  /** The key verification pins, as given (`--public-key`); none: accepted unpinned. */
  readonly pinnedKey: string | undefined;
}

export interface WrittenPacket {
  /** `verify`'s exit code. */
  readonly verified: number;
  readonly report: VerificationReport;
}

export async function writeAuditPacket(packet: AuditPacket, io: CliIo): Promise<WrittenPacket> {
  const { out } = packet;
  const summary = await writePacketEvidence({
    out,
    policyBytes: packet.policyBytes,
    policyHash: packet.policy.hash,
    publicKey: packet.publicKey,
  });
  const verified = await verifyCommand(
    [
      '--receipt-chain',
      join(out, PACKET_FILES.evidence),
      '--policy-hash',
      join(out, POLICY_HASH_FILE),
      '--require-sealed',
      '--whole-recorder',
      '--output',
      join(out, PACKET_FILES.verifier),
      ...(packet.pinnedKey === undefined
        ? ['--allow-unpinned']
        : ['--public-key', packet.pinnedKey]),
    ],
    io,
  );
  const report = parseVerificationReport(await readFile(join(out, PACKET_FILES.verifier), 'utf8'));
  await writePacketReport({
    out,
    summary,
    report,
    pinnedKey: packet.pinnedKey === undefined ? undefined : packet.publicKey,
    run: packet.run,
    posture: packet.posture,
    policy: packet.policy,
    generatedAt: new Date().toISOString(),
  });
  return { verified, report };
}
