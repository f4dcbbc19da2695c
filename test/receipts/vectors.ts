// Locates Pipelock's conformance vectors (shared/conformance beside the clone). A missing
// directory is an error, never a reason to skip.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const VECTORS_DIR = path.resolve(repoRoot, '../shared/conformance');

export function vectorBytes(name: string): Buffer {
  if (!existsSync(VECTORS_DIR)) {
    throw new Error(
      `conformance vectors not found at ${VECTORS_DIR} (CI must check out shared/ beside the repo)`,
    );
  }
  return readFileSync(path.join(VECTORS_DIR, name));
}

export function vectorText(name: string): string {
  return vectorBytes(name).toString('utf8');
}

export const KEY_A = '4655a7e605c12ebb00a46037881c33c5bca5eb74b45a02e8e7261a7ff5a21678';
