// Writing the Audit Packet (DESIGN §7) around the evidence the run collected: first the files
// verification reads, then, with the verification report, packet.json and summary.md.
import { createReadStream } from 'node:fs';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import {
  encodePipelockPublicKey,
  encodePublicKeyPem,
  encodeReceipt,
  evidenceFileOrder,
  readEvidenceDirectory,
  type Receipt,
} from '../receipts/index.js';
import type { VerificationReport } from '../cli/verification-report.js';
import {
  encodeSorted,
  packetJson,
  PACKET_FILES,
  UNSUPPORTED_PATHS,
  type PacketPosture,
  type PacketRun,
} from './packet-json.js';
import { summarizeChain } from './summarize.js';
import { summaryMarkdown } from './summary-md.js';
import { EngineLogTally, type EngineLogFacts } from './engine-log.js';

export const EVIDENCE_DIR = 'evidence';
export const ENGINE_LOG = 'engine.log';
export const POLICY_FILE = 'policy.yaml';
export const POLICY_HASH_FILE = 'policy-hash.txt';
export const PUBLIC_KEY_FILE = 'signer-public-key.pem';
export const RECEIPTS_FILE = 'receipts.json';

export interface PacketEvidence {
  readonly out: string;
  readonly policyBytes: Uint8Array;
  readonly policyHash: string;
  readonly publicKey: Uint8Array;
}

/**
 * evidence.jsonl (the recorder files of `evidence/` joined byte for byte, in order),
 * receipts.json, the policy, its hash and the signer's public key. Returns the receipts read.
 */
export async function writePacketEvidence(packet: PacketEvidence): Promise<readonly Receipt[]> {
  const dir = join(packet.out, EVIDENCE_DIR);
  const names = evidenceFileOrder(await readdir(dir));
  const files = await Promise.all(
    names.map(async (name) => ({ name, content: await readFile(join(dir, name)) })),
  );
  await writeFile(
    join(packet.out, PACKET_FILES.evidence),
    Buffer.concat(files.map((f) => f.content)),
    { mode: 0o644 },
  );
  const read = readEvidenceDirectory(files);
  // Unreadable evidence still gets its packet: verification says what is wrong with it.
  const receipts = read.ok ? read.value.receipts : [];
  await writeFile(join(packet.out, RECEIPTS_FILE), receiptsJson(receipts));
  await writeFile(join(packet.out, POLICY_FILE), packet.policyBytes);
  await writeFile(join(packet.out, POLICY_HASH_FILE), `${packet.policyHash}\n`);
  await writeFile(join(packet.out, PUBLIC_KEY_FILE), encodePublicKeyPem(packet.publicKey));
  return receipts;
}

/** The chain as a JSON array of receipt envelopes, each in its canonical (signed) encoding. */
export function receiptsJson(receipts: readonly Receipt[]): string {
  return [...receiptsJsonPieces(receipts.map(encodeReceipt))].join('');
}

/** receipts.json piece by piece: the encoded receipts (text or UTF-8), one per line. */
export function* receiptsJsonPieces<T extends string | Uint8Array>(
  encoded: Iterable<T>,
): Generator<string | T> {
  let first = true;
  for (const receipt of encoded) {
    yield first ? '[\n' : ',\n';
    yield receipt;
    first = false;
  }
  yield first ? '[]\n' : '\n]\n';
}

export interface PacketReport {
  readonly out: string;
  readonly receipts: readonly Receipt[];
  readonly report: VerificationReport;
  readonly pinnedKey: Uint8Array | undefined;
  readonly run: PacketRun;
  readonly posture: PacketPosture;
  readonly policy: {
    readonly path: string;
    readonly mode: string;
    readonly dlpPatterns: number;
    readonly websocketFrameScan: boolean;
    readonly hash: string;
  };
  readonly generatedAt: string;
}

/** packet.json and summary.md; returns the summary's Markdown (for the job summary). */
export async function writePacketReport(packet: PacketReport): Promise<string> {
  const summary = summarizeChain(packet.receipts);
  const json = packetJson({
    generatedAt: packet.generatedAt,
    run: packet.run,
    summary,
    report: packet.report,
    ...(packet.pinnedKey === undefined
      ? {}
      : { pinnedKey: encodePipelockPublicKey(packet.pinnedKey).trim() }),
    posture: packet.posture,
    policy: packet.policy,
  });
  await writeFile(join(packet.out, PACKET_FILES.packet), encodeSorted(json));
  const engineLog = await engineLogFacts(packet.out);
  const markdown = summaryMarkdown({
    report: packet.report,
    summary,
    agentExitCode: packet.run.agentExitCode,
    agentIdentity: packet.run.agentIdentity,
    policyMode: packet.policy.mode,
    policyHash: packet.policy.hash,
    verifyCommand: `pipelock-egress verify --receipt-chain ${PACKET_FILES.evidence} --policy-hash ${POLICY_HASH_FILE} --public-key <your pinned public key> --require-sealed --whole-recorder`,
    unsupported: UNSUPPORTED_PATHS,
    engineLog,
  });
  await writeFile(join(packet.out, PACKET_FILES.summary), markdown);
  return markdown;
}

/** What the engine's log, as collected into the packet, says the evidence cannot; read as a stream. */
async function engineLogFacts(out: string): Promise<EngineLogFacts> {
  const path = join(out, ENGINE_LOG);
  try {
    await access(path);
  } catch (error) {
    // A run that never started the engine has no log.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  const tally = new EngineLogTally();
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) tally.add(line);
  return tally.result();
}
