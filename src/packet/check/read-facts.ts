// Reading the files of an Audit Packet as facts: missing, unusable (not a regular file, too
// large, unreadable, not UTF-8) or read, never trusting what is there to be what a run wrote.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import type { FileFact } from './file-check.js';

/** Files read whole are small; anything larger is not what a run writes. */
const SMALL_FILE_BYTES = 16 * 1024 * 1024;

export function cannotRead(error: unknown): FileFact<never> {
  return { kind: 'unusable', error: `cannot read it: ${(error as Error).message}` };
}

export async function regularFileSize(file: string): Promise<FileFact<number>> {
  try {
    // Not followed: a link is not a file the run wrote, whatever it points at.
    const info = await lstat(file);
    return info.isFile()
      ? { kind: 'read', value: info.size }
      : {
          kind: 'unusable',
          error: info.isSymbolicLink()
            ? 'a symbolic link, not a regular file'
            : 'not a regular file',
        };
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? { kind: 'missing' }
      : cannotRead(error);
  }
}

export async function readSmall(file: string): Promise<FileFact<Uint8Array>> {
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

export function utf8(bytes: Uint8Array): FileFact<string> {
  try {
    // A byte-order mark is kept: no run writes one, so a file holding one is not as written.
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    return { kind: 'read', value: decoder.decode(bytes) };
  } catch {
    return { kind: 'unusable', error: 'not UTF-8 text' };
  }
}

/** A file's length and SHA-256. */
export interface FileDigest {
  readonly bytes: number;
  readonly sha256: string;
}

/** The digest of a file made piece by piece, to compare one on disk with. */
export class ExpectedFile {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  add(text: string): void {
    this.hash.update(text);
    this.bytes += Buffer.byteLength(text);
  }

  digest(): FileDigest {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/**
 * A file's length, and its SHA-256 if it is `expectedBytes` long (one of another length is
 * not that file, however large it is: it is not read).
 */
export async function sha256OfFileOfSize(
  file: string,
  expectedBytes: number,
): Promise<FileFact<{ readonly bytes: number; readonly sha256: string | undefined }>> {
  const size = await regularFileSize(file);
  if (size.kind !== 'read') return size;
  if (size.value !== expectedBytes)
    return { kind: 'read', value: { bytes: size.value, sha256: undefined } };
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  } catch (error) {
    return cannotRead(error);
  }
  return { kind: 'read', value: { bytes: size.value, sha256: hash.digest('hex') } };
}
