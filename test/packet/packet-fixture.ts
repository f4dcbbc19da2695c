// An Audit Packet written the way `run` writes one, around signed sample evidence: the evidence
// directory, then the files verification reads, the verification report, packet.json, summary.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCommand } from '../../src/cli/verify-command.js';
import { parseVerificationReport } from '../../src/cli/verification-report.js';
import { PACKET_FILES } from '../../src/packet/packet-json.js';
import { writePacketEvidence, writePacketReport } from '../../src/packet/write-packet.js';
import type { ReceiptFields } from '../../src/receipts/builder.js';
import { fromHex, utf8 } from '../../src/receipts/bytes.js';
import { readFile } from 'node:fs/promises';
import {
  SAMPLE_KEY,
  SAMPLE_POLICY_HASH,
  sampleDecision,
  sampleEvidence,
} from '../receipts/sample-evidence.js';

/** The bytes whose SHA-256 is the policy hash the sample receipts carry. */
export const SAMPLE_POLICY = utf8('sample policy');

export async function writeSamplePacket(
  out: string,
  decisions: number,
  decide: (i: number) => ReceiptFields = sampleDecision,
): Promise<void> {
  mkdirSync(join(out, 'evidence'), { recursive: true });
  const lines = [...sampleEvidence(decisions, undefined, decide)].map((line) => line.text);
  writeFileSync(join(out, 'evidence', 'evidence-proxy-0.jsonl'), lines.join(''));
  const receipts = await writePacketEvidence({
    out,
    policyBytes: SAMPLE_POLICY,
    policyHash: SAMPLE_POLICY_HASH,
    publicKey: fromHex(SAMPLE_KEY) ?? new Uint8Array(),
  });
  const reportFile = join(out, PACKET_FILES.verifier);
  const quiet = { out: () => {}, err: () => {}, readFile: (path: string) => readFile(path) };
  await verifyCommand(
    [
      '--receipt-chain',
      join(out, PACKET_FILES.evidence),
      '--policy-hash',
      join(out, 'policy-hash.txt'),
      '--require-sealed',
      '--whole-recorder',
      '--public-key',
      SAMPLE_KEY,
      '--output',
      reportFile,
    ],
    quiet,
  );
  await writePacketReport({
    out,
    receipts,
    report: parseVerificationReport(await readFile(reportFile, 'utf8')),
    pinnedKey: fromHex(SAMPLE_KEY),
    run: {
      provider: 'local',
      agentIdentity: 'agent <ci>',
      startedAt: '2026-11-26T22:00:00Z',
      completedAt: '2026-11-26T22:01:00Z',
      agentExitCode: 0,
    },
    posture: {
      runnerOs: 'Linux',
      networkNamespace: 'pe-0000000001',
      agentUser: 'pipelock-agent',
      agentUid: 1001,
      hostUser: 'pipelock-egress',
      hostUid: 1002,
      proxyUrl: 'http://127.0.0.1:8888',
      scriptBasename: 'agent.sh',
      scriptArgCount: 0,
    },
    policy: {
      path: 'policy.yaml',
      mode: 'enforce',
      dlpPatterns: 0,
      websocketFrameScan: false,
      hash: SAMPLE_POLICY_HASH,
    },
    generatedAt: '2026-11-26T22:01:01Z',
  });
}
