// What an encoded run in a request says once decoded. A secret wrapped in base64, base32 or
// hex is only spelled as its encoding when it fills the whole blob: `echo $TOKEN | base64`
// adds a newline, Basic-style `name:token` puts bytes before it, and the characters at its
// edges then change. So every run of encoding characters is decoded at every alignment (one
// of them lines up with the blob's own start, whatever precedes it in the run), and what it
// decodes to is scanned like the text itself. One level deep: an encoding of an encoding is
// seen only where its inner spelling is one the scanner already knows.

import {
  base32Length,
  base64Length,
  decodeBase32Into,
  decodeBase64Into,
  decodeHexInto,
  hexLength,
  type DecodeInto,
} from './byte-decoders.js';
import type { View } from './secret-scan.js';

interface Encoding {
  readonly name: string;
  /** Its characters' classes, to find its runs inside a run of base64; none: the whole run is one. */
  readonly within?: Uint8Array;
  /** Characters per whole number of bytes: every alignment is a start in 0..period-1. */
  readonly period: number;
  /** Bytes a number of its characters decode to. */
  length(count: number): number;
  readonly decodeInto: DecodeInto;
}

/** Shorter runs cannot hide a credential worth the name (12 bytes of base64, 8 of hex). */
const MIN_RUN = 16;

/** Character codes of both base64 alphabets (Node's decoder takes `-_` as `+/`). */
const BASE64_CHAR = Uint8Array.from({ length: 128 }, (_, code) =>
  /[A-Za-z0-9+/_-]/.test(String.fromCharCode(code)) ? 1 : 0,
);
const isBase64 = (code: number): boolean => code < 128 && BASE64_CHAR[code] === 1;

/** A wrapped blob's lines hold at least one base64 quantum. */
const NARROWEST_WRAP = 4;

/**
 * Runs of base64 characters, a wrapped blob's lines joined: encoders wrap at a width of their
 * own (PEM 64, MIME 76, `base64 -w N` any), so lines of one width, the last one as wide or
 * narrower, are one blob, whatever indentation they share. A line of another width before
 * them (a JSON key, an armour word, a YAML key) is not part of it; nor are lines of text
 * that only happen to begin and end with such characters (a word list is no blob). Hex and
 * base32 use subsets of these characters, so their runs are looked for only inside these.
 * Loops, not regular expressions: this reads every scanned byte of a request.
 */
export function base64Runs(text: string): string[] {
  const runs: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (!isBase64(text.charCodeAt(i))) {
      i++;
      continue;
    }
    // Most runs are words too short to be a blob, and no line follows them: nothing to copy.
    const end = lineEnd(text, i);
    const width = end - i;
    if (width < MIN_RUN && (width < NARROWEST_WRAP || continuation(text, end) < 0)) {
      i = end;
      continue;
    }
    const blob = wrappedBlob(text, i);
    const run = blob.lines.join('');
    if (run.length >= MIN_RUN) runs.push(run);
    i = blob.resume;
  }
  return runs;
}

/** Where the base64 characters starting at `start` end. */
function lineEnd(text: string, start: number): number {
  let end = start;
  while (end < text.length && isBase64(text.charCodeAt(end))) end++;
  return end;
}

/**
 * The lines of the blob whose first line starts at `start`: the lines after it as wide as it,
 * then at most one narrower. A narrower second line may as well begin a blob of its own after
 * a line that is none (a wider key): the runs then read on from it too.
 */
function wrappedBlob(text: string, start: number): { lines: string[]; resume: number } {
  let end = lineEnd(text, start);
  const lines = [text.slice(start, end)];
  const width = end - start;
  let next = width >= NARROWEST_WRAP ? continuation(text, end) : -1;
  while (next >= 0) {
    const nextEnd = lineEnd(text, next);
    const length = nextEnd - next;
    if (length > width) break;
    lines.push(text.slice(next, nextEnd));
    if (length < width) return { lines, resume: lines.length === 2 ? next : nextEnd };
    end = nextEnd;
    next = continuation(text, end);
  }
  return { lines, resume: end };
}

/**
 * Where the line after the line break at `at` (`\n`, `\r\n` or `\r`, then spaces and tabs)
 * begins with a base64 character, or -1: a blank line or any other character ends a blob.
 */
function continuation(text: string, at: number): number {
  const code = text.charCodeAt(at);
  if (code !== 10 && code !== 13) return -1;
  let next = at + (code === 13 && text.charCodeAt(at + 1) === 10 ? 2 : 1);
  while (text.charCodeAt(next) === 32 || text.charCodeAt(next) === 9) next++;
  return next < text.length && isBase64(text.charCodeAt(next)) ? next : -1;
}

/** A character's class in an encoding of one case: not in it, in either case, or one case's. */
const OUTSIDE = 0;
const EITHER = 1;
const UPPER = 2;
const LOWER = 3;

function classes(either: string, upper: string): Uint8Array {
  return Uint8Array.from({ length: 128 }, (_, code) => {
    const char = String.fromCharCode(code);
    if (either.includes(char)) return EITHER;
    if (upper.includes(char)) return UPPER;
    return upper.includes(char.toUpperCase()) ? LOWER : OUTSIDE;
  });
}

/**
 * The longest stretches of `chars` whose letters are all of one case (digits go with either),
 * MIN_RUN long or more. A loop: a regular expression's backtracking over a run of megabytes
 * overflows its stack.
 */
export function singleCaseRuns(chars: string, table: Uint8Array): string[] {
  const runs: string[] = [];
  let start = 0;
  let letterCase = OUTSIDE;
  /** Where the digits just before `i` began (they belong to a run of either case), or -1. */
  let digitsFrom = -1;
  const close = (end: number) => {
    if (end - start >= MIN_RUN) runs.push(chars.slice(start, end));
  };
  for (let i = 0; i < chars.length; i++) {
    const kind = table[chars.charCodeAt(i)] ?? OUTSIDE;
    if (kind === EITHER) {
      if (digitsFrom < 0) digitsFrom = i;
    } else if (kind === OUTSIDE) {
      close(i);
      start = i + 1;
      letterCase = OUTSIDE;
      digitsFrom = -1;
    } else {
      if (letterCase !== OUTSIDE && letterCase !== kind) {
        close(i);
        start = digitsFrom >= 0 ? digitsFrom : i;
      }
      letterCase = kind;
      digitsFrom = -1;
    }
  }
  close(chars.length);
  return runs;
}

export const BASE32_CLASSES = classes('234567', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ');
/** Hex decoders take either case, mixed too; its runs inside base64 are rare enough to try. */
export const HEX_CLASSES = classes('0123456789abcdefABCDEF', '');

const ENCODINGS: readonly Encoding[] = [
  { name: 'base64', period: 4, length: base64Length, decodeInto: decodeBase64Into },
  {
    // Encoders write one case; host names arrive lowercased (DNS exfiltration's encoding).
    // Runs of one case only: mixed-case letters are base64's, and decoding each of their
    // stretches without 0, 1, 8, 9, + and / eight ways would only cost time.
    name: 'base32',
    within: BASE32_CLASSES,
    period: 8,
    length: base32Length,
    decodeInto: decodeBase32Into,
  },
  { name: 'hex', within: HEX_CLASSES, period: 2, length: hexLength, decodeInto: decodeHexInto },
];

/**
 * Decoded bytes one scan may hold: a 6 MiB base64 upload decodes to about 18 MiB (four
 * alignments); megabytes of one repeated letter decode many times over, base64 and base32.
 */
const MAX_DECODED_BYTES = 32 * 1024 * 1024;

/** A view's encoded runs decode to more than one scan may hold. */
export class DecodingBudgetExceeded extends Error {
  constructor(readonly where: string) {
    super(
      `it holds more encoded text than can be decoded for scanning (over ${MAX_DECODED_BYTES} bytes decoded)`,
    );
  }
}

const NEWLINE = 0x0a;

/**
 * The decodings of one encoding in one view, a line each, gathered as bytes and read as text
 * once (an invalid sequence at a decoding's end reads as U+FFFD before its newline either way).
 */
class DecodedLines {
  private bytes = Buffer.alloc(0);
  private length = 0;

  append(chars: string, from: number, encoding: Encoding): void {
    const most = encoding.length(chars.length - from);
    if (this.length + most + 1 > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.length + most + 1));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    if (this.length > 0) this.bytes[this.length++] = NEWLINE;
    this.length = encoding.decodeInto(chars, from, this.bytes, this.length);
  }

  text(): string | undefined {
    return this.length === 0 ? undefined : this.bytes.toString('utf8', 0, this.length);
  }
}

/**
 * The decodings of every encoded run in the views, each labelled with its view and encoding.
 * Throws DecodingBudgetExceeded beyond MAX_DECODED_BYTES (the scanner then refuses: what
 * cannot be scanned is not sent).
 */
export function decodedViews(views: readonly View[]): View[] {
  const out: View[] = [];
  const seen = new Set<string>();
  let budget = MAX_DECODED_BYTES;
  for (const view of views) {
    if (view.decodeRuns === false) continue;
    const decoded = ENCODINGS.map(() => new DecodedLines());
    for (const run of base64Runs(view.text)) {
      for (const chars of candidates(run)) {
        if (chars.length < MIN_RUN || seen.has(chars)) continue;
        seen.add(chars);
        ENCODINGS.forEach((encoding, index) => {
          const runs = encoding.within ? singleCaseRuns(chars, encoding.within) : [chars];
          for (const within of runs) {
            for (let start = 0; start < encoding.period; start++) {
              budget -= encoding.length(within.length - start);
              if (budget < 0) throw new DecodingBudgetExceeded(view.where);
              decoded[index]?.append(within, start, encoding);
            }
          }
        });
      }
    }
    ENCODINGS.forEach((encoding, index) => {
      const text = decoded[index]?.text();
      if (text !== undefined) out.push({ text, where: `${view.where} (${encoding.name}-decoded)` });
    });
  }
  return out;
}

/** Runs as long as a URL may be (the engine's header limit) can be URL paths. */
const URL_SIZED = 16 * 1024;

/**
 * A run, and each of its `/`-separated parts when it has any and could be a URL path: a blob
 * in a path starts a segment, and decoded with the path before it, its first bytes would
 * follow garbage (which a detector's word boundary could fail on).
 */
function candidates(run: string): string[] {
  return run.length <= URL_SIZED && run.includes('/') ? [run, ...run.split('/')] : [run];
}
