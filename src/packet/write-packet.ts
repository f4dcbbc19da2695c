// Writing the Audit Packet (DESIGN §7) around the evidence the run collected: first the files
// verification reads, then, with the verification report, packet.json and summary.md.
import { createReadStream } from 'node:fs';
import { access, open, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { encodePublicKeyPem, encodeReceipt } from '../receipts/index.js';
import {
  ENGINE_LOG,
  EVIDENCE_DIR,
  PACKET_FILES,
  POLICY_FILE,
  POLICY_HASH_FILE,
  PUBLIC_KEY_FILE,
  RECEIPTS_FILE,
} from './packet-json.js';
import type { ChainSummary } from './summarize.js';
import { summarizeEvidence, type EvidenceSummary } from './evidence-files.js';
import { reportFiles, type ReportFilesInput } from './report-files.js';
import { EngineLogTally, type EngineLogFacts } from './engine-log.js';

/**
 * Packet files are new files: never written through a symlink or into a FIFO already there
 * (`run` checks the output empty; this holds whatever the caller checked).
 */
const NEW_FILE = 'wx';

export interface PacketEvidence {
  readonly out: string;
  readonly policyBytes: Uint8Array;
  readonly policyHash: string;
  readonly publicKey: Uint8Array;
}

/**
 * evidence.jsonl (the recorder files of `evidence/` joined byte for byte, in order),
 * receipts.json, the policy, its hash and the signer's public key, streamed one evidence file
 * at a time. Returns what the receipts say, counted.
 */
export async function writePacketEvidence(packet: PacketEvidence): Promise<ChainSummary> {
  const evidence = await open(join(packet.out, PACKET_FILES.evidence), NEW_FILE, 0o644);
  const receiptsFile = await open(join(packet.out, RECEIPTS_FILE), NEW_FILE, 0o644);
  let counted = 0;
  let read: EvidenceSummary;
  try {
    read = await summarizeEvidence(join(packet.out, EVIDENCE_DIR), async (bytes, receipts) => {
      await evidence.writeFile(bytes);
      if (receipts === undefined || receipts.length === 0) return;
      const pieces = receipts.map((r) => receiptsJsonSeparator(counted++) + encodeReceipt(r));
      await receiptsFile.writeFile(pieces.join(''));
    });
    // Unreadable evidence still gets its packet: verification says what is wrong with it.
    if (!read.readable) {
      await receiptsFile.truncate(0);
      await receiptsFile.write(receiptsJsonEnd(0), 0);
    } else {
      await receiptsFile.writeFile(receiptsJsonEnd(counted));
    }
  } finally {
    await evidence.close();
    await receiptsFile.close();
  }
  await writeFile(join(packet.out, POLICY_FILE), packet.policyBytes, { flag: NEW_FILE });
  await writeFile(join(packet.out, POLICY_HASH_FILE), `${packet.policyHash}\n`, { flag: NEW_FILE });
  await writeFile(join(packet.out, PUBLIC_KEY_FILE), encodePublicKeyPem(packet.publicKey), {
    flag: NEW_FILE,
  });
  return read.summary;
}

/** What comes before the receipt at `index` in receipts.json. */
export function receiptsJsonSeparator(index: number): string {
  return index === 0 ? '[\n' : ',\n';
}

/** What closes receipts.json after `count` receipts. */
export function receiptsJsonEnd(count: number): string {
  return count === 0 ? '[]\n' : '\n]\n';
}

/** What packet.json and summary.md are made from: the chain as counted, the log read here. */
export interface PacketReport extends Omit<ReportFilesInput, 'engineLog'> {
  readonly out: string;
}

/** packet.json and summary.md; returns the summary's Markdown (for the job summary). */
export async function writePacketReport(packet: PacketReport): Promise<string> {
  const { out, ...given } = packet;
  const files = reportFiles({
    ...given,
    engineLog: await readEngineLogFacts(join(out, ENGINE_LOG)),
  });
  await writeFile(join(out, PACKET_FILES.packet), files.packetJson, { flag: NEW_FILE });
  await writeFile(join(out, PACKET_FILES.summary), files.summaryMarkdown, { flag: NEW_FILE });
  return files.summaryMarkdown;
}

/** What the engine's log, as collected into the packet, says the evidence cannot; read as a stream. */
export async function readEngineLogFacts(path: string): Promise<EngineLogFacts> {
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
