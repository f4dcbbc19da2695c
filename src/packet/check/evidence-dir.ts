// The packet's evidence/ directory: the engine's own files, as written. Its evidence files,
// joined in chain order, must be evidence.jsonl byte for byte; beside them only the run CA's
// certificate may be there, and nothing may be other than a regular file.
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { evidenceFileOrder, MAX_SHARDS } from '../../receipts/index.js';
import { PACKET_FILES, RUN_CA_FILE } from '../packet-json.js';
import type { FileFact } from './file-check.js';
import { cannotRead } from './read-facts.js';

export interface EvidenceDirFacts {
  /** The evidence files, in chain order. */
  readonly files: readonly string[];
  /** Where they and evidence.jsonl first differ, if they do. */
  readonly difference?: string;
}

export async function readEvidenceDir(
  dir: string,
  joinedFile: string,
): Promise<FileFact<EvidenceDirFacts>> {
  try {
    const info = await lstat(dir);
    if (!info.isDirectory()) {
      const what = info.isSymbolicLink() ? 'a symbolic link' : 'a file';
      return { kind: 'unusable', error: `${what}, not a directory` };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    return cannotRead(error);
  }
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    const files = evidenceFileOrder(entries.map((entry) => entry.name));
    const engineWrites = new Set([...files, RUN_CA_FILE]);
    const stray = entries.find((entry) => !entry.isFile());
    if (stray) return { kind: 'unusable', error: `${stray.name} is not a regular file` };
    const other = entries.find((entry) => !engineWrites.has(entry.name));
    if (other)
      return { kind: 'unusable', error: `holds ${other.name}, which the engine does not write` };
    if (files.length === 0)
      return { kind: 'unusable', error: 'holds no evidence-proxy-<seq>.jsonl file' };
    if (files.length > MAX_SHARDS) {
      return {
        kind: 'unusable',
        error: `holds ${files.length} evidence files, more than the engine writes (${MAX_SHARDS})`,
      };
    }
    const difference = await firstDifference(dir, files, joinedFile);
    return { kind: 'read', value: { files, ...(difference ? { difference } : {}) } };
  } catch (error) {
    return cannotRead(error);
  }
}

/** Reads the files in order beside the joined file; says where they first part ways. */
async function firstDifference(
  dir: string,
  files: readonly string[],
  joinedFile: string,
): Promise<string | undefined> {
  const joined = await open(joinedFile, 'r');
  try {
    let offset = 0;
    for (const name of files) {
      for await (const chunk of createReadStream(join(dir, name)) as AsyncIterable<Buffer>) {
        const at = await differenceAt(joined, chunk, offset);
        if (at !== undefined)
          return `${name} and ${PACKET_FILES.evidence} differ at byte ${at} of ${PACKET_FILES.evidence}`;
        offset += chunk.length;
      }
    }
    const rest = (await joined.stat()).size - offset;
    if (rest > 0)
      return `${PACKET_FILES.evidence} goes on for ${rest} bytes after the last file, ${files.at(-1) ?? ''}`;
    return undefined;
  } finally {
    await joined.close();
  }
}

/** The byte of the joined file, from `offset`, where `chunk` stops matching it. */
async function differenceAt(
  joined: FileHandle,
  chunk: Buffer,
  offset: number,
): Promise<number | undefined> {
  const expected = Buffer.alloc(chunk.length);
  const { bytesRead } = await joined.read(expected, 0, chunk.length, offset);
  if (bytesRead === chunk.length && expected.equals(chunk)) return undefined;
  return offset + chunk.findIndex((byte, i) => i >= bytesRead || byte !== expected[i]);
}
