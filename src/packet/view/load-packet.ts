// Reads an Audit Packet for the viewer: verifies evidence.jsonl as the action does (whole
// recorder, sealed, the packet's policy hash, the pinned keys), keeps a row per verified receipt
// and counts them, and checks the other files against the verified chain.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  parsePublicKey,
  publicKeyHex,
  type CryptoBackend,
  type EvidenceReport,
  type Receipt,
} from '../../receipts/index.js';
import { verifyEvidencePath } from '../../cli/evidence-source.js';
import { judgeEvidence, type Judgement } from '../../cli/judge.js';
import { policyHash } from '../../policy/hash.js';
import { PACKET_FILES } from '../packet-json.js';
import { ChainTally, type ChainSummary } from '../summarize.js';
import {
  POLICY_FILE,
  POLICY_HASH_FILE,
  PUBLIC_KEY_FILE,
  RECEIPTS_FILE,
  receiptsJsonPieces,
} from '../write-packet.js';
import {
  packetChecks,
  type FileCheck,
  type FileFact,
  type RecordedReport,
} from './packet-checks.js';
import { receiptRow, type ReceiptRow } from './receipt-rows.js';

/** The directory is not an Audit Packet that can be read at all (exit 2). */
export class UnreadablePacket extends Error {}

export interface PacketView {
  readonly dir: string;
  readonly report: EvidenceReport;
  readonly judgement: Judgement;
  readonly pinnedKeys: readonly string[];
  /** One per receipt the chain accepted, in order (up to a break, if it broke). */
  readonly rows: readonly ReceiptRow[];
  readonly summary: ChainSummary;
  readonly checks: readonly FileCheck[];
  readonly policy: FileFact<string>;
}

/** Files shown or compared whole are small; anything larger is not what the run wrote. */
const SMALL_FILE_BYTES = 1024 * 1024;

function cannotRead(error: unknown): FileFact<never> {
  return { kind: 'unusable', error: `cannot read it: ${(error as Error).message}` };
}

async function regularFileSize(file: string): Promise<FileFact<number>> {
  try {
    const info = await stat(file);
    return info.isFile()
      ? { kind: 'read', value: info.size }
      : { kind: 'unusable', error: 'not a regular file' };
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? { kind: 'missing' }
      : cannotRead(error);
  }
}

async function readSmall(file: string): Promise<FileFact<Uint8Array>> {
  const size = await regularFileSize(file);
  if (size.kind !== 'read') return size;
  if (size.value > SMALL_FILE_BYTES)
    return { kind: 'unusable', error: `larger than ${SMALL_FILE_BYTES} bytes` };
  try {
    return { kind: 'read', value: await readFile(file) };
  } catch (error) {
    return cannotRead(error);
  }
}

function mapFact<T, U>(fact: FileFact<T>, read: (value: T) => FileFact<U>): FileFact<U> {
  return fact.kind === 'read' ? read(fact.value) : fact;
}

function utf8(bytes: Uint8Array): FileFact<string> {
  try {
    return { kind: 'read', value: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { kind: 'unusable', error: 'not UTF-8 text' };
  }
}

async function sha256OfFile(file: string): Promise<FileFact<string>> {
  const size = await regularFileSize(file);
  if (size.kind !== 'read') return size;
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  } catch (error) {
    return cannotRead(error);
  }
  return { kind: 'read', value: hash.digest('hex') };
}

function signerKeyOf(pem: string): FileFact<string> {
  const parsed = parsePublicKey(pem);
  return parsed.ok
    ? { kind: 'read', value: publicKeyHex(parsed.key) }
    : { kind: 'unusable', error: parsed.error };
}

function recordedReportOf(text: string): FileFact<RecordedReport> {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return { kind: 'read', value: value as RecordedReport };
  } catch {
    // reported below
  }
  return { kind: 'unusable', error: 'not a JSON object' };
}

export async function loadPacketView(
  dir: string,
  backend: CryptoBackend,
  pinnedKeys: readonly string[],
): Promise<PacketView> {
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
  const rows: ReceiptRow[] = [];
  const tally = new ChainTally();
  const onAccepted = (receipt: Receipt, encoded: string, hash: string): void => {
    rows.push(receiptRow(receipt, encoded, hash));
    tally.add(receipt);
  };
  const { report } = await verifyEvidencePath(backend, evidence, {
    trustedKeys: pinnedKeys,
    wholeRecorder: true,
    onAccepted,
  });
  const judgement = judgeEvidence(report, {
    requireSealed: true,
    allowUnpinned: true,
    expectedPolicy: policyHashText.kind === 'read' ? policyHashText.value : undefined,
  });
  const expected = createHash('sha256');
  for (const piece of receiptsJsonPieces(rows.map((row) => row.encoded))) expected.update(piece);
  const policyBytes = await readSmall(join(dir, POLICY_FILE));
  const checks = packetChecks({
    report,
    judgement,
    policyFileHash: mapFact(policyBytes, (bytes) => ({ kind: 'read', value: policyHash(bytes) })),
    policyHashText,
    receiptsFileHash: await sha256OfFile(join(dir, RECEIPTS_FILE)),
    receiptsExpectedHash: expected.digest('hex'),
    signerKey: mapFact(await readSmall(join(dir, PUBLIC_KEY_FILE)), (bytes) =>
      mapFact(utf8(bytes), signerKeyOf),
    ),
    recordedReport: mapFact(await readSmall(join(dir, PACKET_FILES.verifier)), (bytes) =>
      mapFact(utf8(bytes), recordedReportOf),
    ),
  });
  return {
    dir,
    report,
    judgement,
    pinnedKeys,
    rows,
    summary: tally.summary(),
    checks,
    policy: mapFact(policyBytes, utf8),
  };
}
