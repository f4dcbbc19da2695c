// verify.receipts_per_s: receipts verified per second on one core. A 20,000-decision evidence
// file is streamed through the verifier in 256 KiB chunks, as `verify` reads a file.
import { pathToFileURL } from 'node:url';
import { EvidenceStream, EvidenceVerifier } from '../src/receipts/index.js';
import { createNodeBackend } from '../src/receipts/node-backend.js';
import { SAMPLE_KEY, sampleEvidence } from '../test/receipts/sample-evidence.js';

const DECISIONS = 20_000;
const CHUNK_BYTES = 256 * 1024;

export function benchVerify(decisions = DECISIONS): number {
  const file = Buffer.from([...sampleEvidence(decisions)].map((line) => line.text).join(''));
  const started = performance.now();
  const verifier = new EvidenceVerifier(createNodeBackend(), { trustedKeys: [SAMPLE_KEY] });
  const stream = new EvidenceStream(verifier, 'bench');
  for (let at = 0; at < file.length; at += CHUNK_BYTES) {
    stream.write(file.subarray(at, at + CHUNK_BYTES));
  }
  stream.end();
  const report = verifier.finish();
  const seconds = (performance.now() - started) / 1000;
  if (!report.valid) throw new Error(`bench chain did not verify: ${report.error?.message ?? ''}`);
  return report.receipt_count / seconds;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rate = benchVerify();
  console.log(`verify.receipts_per_s ${Math.round(rate)} (${DECISIONS} decisions, one core)`);
}
