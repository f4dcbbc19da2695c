// Decoders that write into a buffer the caller provides. A request of megabytes can hold
// hundreds of thousands of short runs, each decoded at every alignment: a Buffer and a string
// made per decoding cost more than the decoding itself, so every decoding of a view is written
// into one buffer and read back as one text. Each decodes what Node's own decoder would
// (tests hold them to it) from characters of its alphabet only: the runs they are given.

/** Each character code's value in an alphabet, or -1. */
function digits(alphabet: string, eitherCase: boolean): Int8Array {
  return Int8Array.from({ length: 128 }, (_, code) => {
    const char = String.fromCharCode(code);
    return alphabet.indexOf(eitherCase ? char.toLowerCase() : char);
  });
}

/** Both base64 alphabets: Node's decoder reads `-_` as `+/`. */
const BASE64_DIGITS = (() => {
  const table = digits('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', false);
  table['-'.charCodeAt(0)] = 62;
  table['_'.charCodeAt(0)] = 63;
  return table;
})();
const BASE32_DIGITS = digits('abcdefghijklmnopqrstuvwxyz234567', true);
const HEX_DIGITS = digits('0123456789abcdef', true);

/** A decoder: `chars` from `from` on, written at `at`; returns where its bytes end. */
export type DecodeInto = (chars: string, from: number, out: Buffer, at: number) => number;

/**
 * Decodes digits of `width` bits each, most significant first, into whole bytes (a partial
 * last byte is dropped), up to the first character outside the alphabet.
 */
const digitsDecoder =
  (table: Int8Array, width: number): DecodeInto =>
  (chars, from, out, at) => {
    let value = 0;
    let bits = 0;
    for (let i = from; i < chars.length; i++) {
      const digit = table[chars.charCodeAt(i)] ?? -1;
      if (digit < 0) break;
      value = ((value << width) | digit) & 0xffff;
      bits += width;
      if (bits >= 8) {
        bits -= 8;
        out[at++] = (value >> bits) & 0xff;
      }
    }
    return at;
  };

/** Bytes `count` characters of an encoding decode to (whole bytes; a partial one is dropped). */
export const base64Length = (count: number): number => Math.floor((count * 6) / 8);
export const base32Length = (count: number): number => Math.floor((count * 5) / 8);
export const hexLength = (count: number): number => Math.floor(count / 2);

/** Base64 of either alphabet, unpadded. */
export const decodeBase64Into = digitsDecoder(BASE64_DIGITS, 6);
/** RFC 4648 base32 without padding, either case. */
export const decodeBase32Into = digitsDecoder(BASE32_DIGITS, 5);
/** Hex of either case, a pair per byte. */
export const decodeHexInto = digitsDecoder(HEX_DIGITS, 4);
