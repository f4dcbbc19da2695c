// Streams the evidence a `--receipt-chain PATH` names (a file of any shape, or a directory of
// evidence-<session>-<seq>.jsonl shards in numeric order) through an EvidenceVerifier.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_SESSION_ID,
  EvidenceStream,
  EvidenceVerifier,
  evidenceFileOrder,
  MAX_SHARD_BYTES,
  MAX_SHARDS,
  type CryptoBackend,
  type EvidenceOptions,
  type EvidenceReport,
} from '../receipts/index.js';

const CHUNK_BYTES = 256 * 1024;

/** The evidence could not be read at all (missing, unreadable): not a verdict on it. */
export class UnreadableEvidence extends Error {}

export interface VerifiedEvidence {
  /** How Pipelock's verifier names the input: the path, or `DIR (session ID)`. */
  readonly label: string;
  readonly report: EvidenceReport;
}

export async function verifyEvidencePath(
  backend: CryptoBackend,
  evidencePath: string,
  options: EvidenceOptions,
): Promise<VerifiedEvidence> {
  const info = await stat(evidencePath).catch((error: unknown) => {
    throw unreadable(evidencePath, error);
  });
  const verifier = new EvidenceVerifier(backend, options);
  if (info.isFile()) {
    await streamFile(evidencePath, new EvidenceStream(verifier, evidencePath));
    return { label: evidencePath, report: verifier.finish() };
  }
  // A FIFO or a device would be read for ever (or without end).
  if (!info.isDirectory()) throw notRegular(evidencePath);
  const sessionId = options.sessionId ?? DEFAULT_SESSION_ID;
  const label = `${evidencePath} (session ${sessionId})`;
  const names = evidenceFileOrder(
    await readdir(evidencePath).catch((error: unknown) => {
      throw unreadable(evidencePath, error);
    }),
    sessionId,
  );
  if (names.length > MAX_SHARDS) {
    verifier.halt({
      class: 'malformed',
      message: `session ${sessionId} has ${names.length} evidence files, more than ${MAX_SHARDS}`,
    });
  }
  for (const name of names) {
    const file = path.join(evidencePath, name);
    const shard = await stat(file).catch((error: unknown) => {
      throw unreadable(file, error);
    });
    if (!shard.isFile()) throw notRegular(file);
    const { size } = shard;
    if (size > MAX_SHARD_BYTES) {
      verifier.halt({
        class: 'malformed',
        message: `${name}: larger than ${MAX_SHARD_BYTES} bytes`,
      });
    }
    if (!(await streamFile(file, new EvidenceStream(verifier, name, 'lines')))) break;
  }
  return { label, report: verifier.finish() };
}

/** Returns false when the verdict settled before the end of the file. */
async function streamFile(file: string, stream: EvidenceStream): Promise<boolean> {
  const input = createReadStream(file, { highWaterMark: CHUNK_BYTES });
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (!stream.write(chunk)) return false;
    }
  } catch (error) {
    throw unreadable(file, error);
  } finally {
    input.destroy();
  }
  stream.end();
  return true;
}

function notRegular(file: string): UnreadableEvidence {
  return new UnreadableEvidence(`cannot read ${file}: not a regular file or a directory`);
}

function unreadable(file: string, error: unknown): UnreadableEvidence {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT' ? 'no such file or directory' : ((error as Error).message ?? String(error));
  return new UnreadableEvidence(`cannot read ${file}: ${reason}`);
}
