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

export async function sha256OfFile(file: string): Promise<FileFact<string>> {
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
