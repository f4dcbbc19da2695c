// Encodings and data for the DLP tests.
import { createHash } from 'node:crypto';

/** RFC 4648 base32, upper case, unpadded: how DNS exfiltration tools spell bytes (tests only). */
export function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return bits > 0 ? out + alphabet[(value << (5 - bits)) & 31] : out;
}

/** Bytes that are the same on every run: the SHA-256 chain of a seed. */
export function noise(length: number): Buffer {
  const parts: Buffer[] = [];
  let block = createHash('sha256').update('decoded-views').digest();
  for (let size = 0; size < length; size += block.length) {
    parts.push(block);
    block = createHash('sha256').update(block).digest();
  }
  return Buffer.concat(parts).subarray(0, length);
}
