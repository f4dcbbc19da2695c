// Checks an Audit Packet as the action checks its own: verifies evidence.jsonl (whole
// recorder, sealed, the packet's policy hash, the pinned keys), counts the verified receipts,
// and checks every other file against them. Reads each file as it is, without trusting it.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  parsePublicKey,
  publicKeyHex,
  type CryptoBackend,
  type EvidenceReport,
  type Receipt,
} from '../../receipts/index.js';
import { fromHex } from '../../receipts/bytes.js';
import { verifyEvidencePath } from '../../cli/evidence-source.js';
import { judgeEvidence, type Judgement } from '../../cli/judge.js';
import { readVerificationReport, type VerificationReport } from '../../cli/verification-report.js';
import { ENGINE_LOG_MAX_FILE_BYTES } from '../../boundary/log-budget.js';
import { formatPolicyError } from '../../policy/errors.js';
import { policyHash } from '../../policy/hash.js';
import { parsePolicy, type Policy } from '../../policy/index.js';
import type { EngineLogFacts } from '../engine-log.js';
import {
  ENGINE_LOG,
  EVIDENCE_DIR,
  PACKET_FILES,
  POLICY_FILE,
  POLICY_HASH_FILE,
  PUBLIC_KEY_FILE,
  RECEIPTS_FILE,
} from '../packet-json.js';
import { ChainTally, type ChainSummary } from '../summarize.js';
import { readEngineLogFacts, receiptsJsonEnd, receiptsJsonSeparator } from '../write-packet.js';
import { mapFact, type FileCheck, type FileFact } from './file-check.js';
import { readEvidenceDir } from './evidence-dir.js';
import {
  cannotRead,
  ExpectedFile,
  readSmall,
  regularFileSize,
  sha256OfFileOfSize,
  utf8,
} from './read-facts.js';
import { packetChecks } from './packet-checks.js';

/** The directory is not an Audit Packet that can be read at all (exit 2). */
export class UnreadablePacket extends Error {}

export interface CheckedPacket {
  readonly dir: string;
  readonly report: EvidenceReport;
  readonly judgement: Judgement;
  readonly pinnedKeys: readonly string[];
  /** The policy hash every receipt must carry (given, or the one policy-hash.txt states). */
  readonly expectedPolicy: string | undefined;
  /** The receipts the chain accepted (all of them, or those before a break), counted. */
  readonly summary: ChainSummary;
  readonly checks: readonly FileCheck[];
  readonly policy: FileFact<string>;
}

/** Each receipt the chain accepted, in order: its encoding as signed and its hash. */
export type AcceptedReceipt = (receipt: Receipt, encoded: string, hash: string) => void;

function signerKeyOf(pem: string): FileFact<string> {
  const parsed = parsePublicKey(pem);
  return parsed.ok
    ? { kind: 'read', value: publicKeyHex(parsed.key) }
    : { kind: 'unusable', error: parsed.error };
}

function recordedReportOf(text: string): FileFact<VerificationReport> {
  const read = readVerificationReport(text);
  return read.ok ? { kind: 'read', value: read.value } : { kind: 'unusable', error: read.error };
}

function policyOf(bytes: Uint8Array): FileFact<Policy> {
  const parsed = parsePolicy(bytes, POLICY_FILE);
  return parsed.ok
    ? { kind: 'read', value: parsed.policy }
    : {
        kind: 'unusable',
        error: `does not load: ${parsed.errors.map(formatPolicyError).join('; ')}`,
      };
}

async function engineLogOf(file: string): Promise<FileFact<EngineLogFacts>> {
  const size = await regularFileSize(file);
  if (size.kind !== 'read') return size;
  if (size.value > ENGINE_LOG_MAX_FILE_BYTES) {
    return {
      kind: 'unusable',
      error: `${size.value} bytes, more than the engine writes (${ENGINE_LOG_MAX_FILE_BYTES}: a log of at most 64 MiB, then two closing lines); not read`,
    };
  }
  try {
    return { kind: 'read', value: await readEngineLogFacts(file) };
  } catch (error) {
    return cannotRead(error);
  }
}

/** The one key that signed the whole chain. */
function chainSigner(report: EvidenceReport): Uint8Array | undefined {
  const [only, ...others] = report.signer_keys;
  return only === undefined || others.length > 0 ? undefined : fromHex(only);
}

export interface CheckOptions {
  /** The policy hash every receipt must carry; default: the one policy-hash.txt states. */
  readonly policyHash?: string;
  readonly onAccepted?: AcceptedReceipt;
}

export async function checkPacket(
  dir: string,
  backend: CryptoBackend,
  pinnedKeys: readonly string[],
  options: CheckOptions = {},
): Promise<CheckedPacket> {
  const evidence = join(dir, PACKET_FILES.evidence);
  const found = await regularFileSize(evidence);
  if (found.kind === 'missing') {
    throw new UnreadablePacket(
      `${dir} holds no ${PACKET_FILES.evidence}: give the directory a run wrote its Audit Packet to (--evidence-output, default audit-artifacts)`,
    );
  }
  if (found.kind === 'unusable') throw new UnreadablePacket(`${evidence}: ${found.error}`);
  const policyHashText = mapFact(await readSmall(join(dir, POLICY_HASH_FILE)), (bytes) =>
    mapFact(utf8(bytes), (text) => ({ kind: 'read', value: text.trim() })),
  );
  const tally = new ChainTally();
  const receiptsJson = new ExpectedFile();
  let accepted = 0;
  const { report } = await verifyEvidencePath(backend, evidence, {
    trustedKeys: pinnedKeys,
    wholeRecorder: true,
    onAccepted: (receipt, encoded, hash) => {
      receiptsJson.add(receiptsJsonSeparator(accepted++));
      receiptsJson.add(encoded);
      tally.add(receipt);
      options.onAccepted?.(receipt, encoded, hash);
    },
  });
  receiptsJson.add(receiptsJsonEnd(accepted));
  const receiptsExpected = receiptsJson.digest();
  const expectedPolicy =
    options.policyHash ?? (policyHashText.kind === 'read' ? policyHashText.value : undefined);
  const judgement = judgeEvidence(report, {
    requireSealed: true,
    allowUnpinned: true,
    expectedPolicy,
  });
  const summary = tally.summary();
  const text = async (file: string): Promise<FileFact<string>> =>
    mapFact(await readSmall(join(dir, file)), utf8);
  const policyBytes = await readSmall(join(dir, POLICY_FILE));
  const checks = packetChecks({
    entries: await readdir(dir),
    report,
    judgement,
    evidenceDir: await readEvidenceDir(join(dir, EVIDENCE_DIR), evidence),
    policyFileHash: mapFact(policyBytes, (bytes) => ({ kind: 'read', value: policyHash(bytes) })),
    policyHashText,
    // Hashed only when it is as long as it should be: a file of any size could be put there.
    receiptsFile: await sha256OfFileOfSize(join(dir, RECEIPTS_FILE), receiptsExpected.bytes),
    receiptsExpected,
    signerKey: mapFact(await text(PUBLIC_KEY_FILE), signerKeyOf),
    recordedReport: mapFact(await text(PACKET_FILES.verifier), recordedReportOf),
    derived: {
      chainVerified: report.valid,
      summary,
      signer: chainSigner(report),
      policy: mapFact(policyBytes, policyOf),
      engineLog: await engineLogOf(join(dir, ENGINE_LOG)),
      packetJson: await text(PACKET_FILES.packet),
      summaryMarkdown: await text(PACKET_FILES.summary),
    },
  });
  return {
    dir,
    report,
    judgement,
    pinnedKeys,
    expectedPolicy,
    summary,
    checks,
    policy: mapFact(policyBytes, utf8),
  };
}
