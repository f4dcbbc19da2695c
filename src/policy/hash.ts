import { createHash } from 'node:crypto';

/** The policy hash that receipts carry: lowercase hex SHA-256 of the file's exact bytes. */
export function policyHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
