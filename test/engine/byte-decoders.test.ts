import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import {
  base32Length,
  base64Length,
  decodeBase32Into,
  decodeBase64Into,
  decodeHexInto,
  hexLength,
  type DecodeInto,
} from '../../src/engine/dlp/byte-decoders.js';
import { base32 } from './encodings.js';

/** What a decoder writes for `chars` from `from` on, checked to fit the length it promises. */
function decode(decoder: DecodeInto, length: (count: number) => number, chars: string, from = 0) {
  const out = Buffer.alloc(length(chars.length - from) + 8, 0xee);
  const end = decoder(chars, from, out, 3);
  assert.equal(end - 3, length(chars.length - from), `${chars} from ${from}`);
  assert.equal(out[end], 0xee, 'nothing written past its end');
  return out.subarray(3, end);
}

function randomChars(alphabet: string, count: number): string {
  return Array.from({ length: count }, () => alphabet[randomInt(alphabet.length)]).join('');
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_';

test('base64 of either alphabet decodes as Node decodes it, from any start', () => {
  for (let round = 0; round < 2000; round++) {
    const chars = randomChars(BASE64, randomInt(0, 90));
    const from = randomInt(0, Math.min(chars.length, 4) + 1);
    const ours = decode(decodeBase64Into, base64Length, chars, from);
    assert.deepEqual(ours, Buffer.from(chars.slice(from), 'base64'), `${chars} from ${from}`);
  }
});

test('hex of either case decodes as Node decodes it, odd lengths too', () => {
  for (let round = 0; round < 2000; round++) {
    const chars = randomChars('0123456789abcdefABCDEF', randomInt(0, 70));
    const from = randomInt(0, Math.min(chars.length, 2) + 1);
    const ours = decode(decodeHexInto, hexLength, chars, from);
    assert.deepEqual(ours, Buffer.from(chars.slice(from), 'hex'), `${chars} from ${from}`);
  }
});

test('RFC 4648 base32 vectors decode, in either case', () => {
  const vectors = { f: 'MY', fo: 'MZXQ', foo: 'MZXW6', foob: 'MZXW6YQ', fooba: 'MZXW6YTB' };
  for (const [plain, encoded] of Object.entries({ ...vectors, foobar: 'MZXW6YTBOI' })) {
    assert.equal(decode(decodeBase32Into, base32Length, encoded).toString(), plain, encoded);
    const lower = encoded.toLowerCase();
    assert.equal(decode(decodeBase32Into, base32Length, lower).toString(), plain, encoded);
    assert.equal(base32(Buffer.from(plain)), encoded);
  }
});

test('base32 decodes what was encoded, from any start that is a byte boundary', () => {
  for (let round = 0; round < 500; round++) {
    const bytes = randomBytes(randomInt(0, 60));
    const prefix = randomBytes(5);
    // Five bytes are eight characters: the prefix's characters end on a byte boundary.
    const chars = base32(Buffer.concat([prefix, bytes]));
    assert.deepEqual(decode(decodeBase32Into, base32Length, chars, 8), bytes, chars);
  }
});
