// What the secret scanner reads in a request beyond its URL: each forwarded header, the body
// (decompressed within a limit, URL-decoded, JSON strings unescaped, quoted-printable and
// character references decoded) and WebSocket messages.

import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { decodedReadings, type View } from './secret-scan.js';
import { withUnicodeFolded } from './unicode-folding.js';

/**
 * One view per header, plus its decoded spellings (percent-encoding, JSON escapes, character
 * references, quoted-printable, MIME encoded words, Basic credentials).
 */
export function headerViews(headers: readonly string[]): View[] {
  const views: View[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? '';
    const value = headers[i + 1] ?? '';
    const where = `header ${name}`;
    views.push({ text: `${name}: ${value}`, where });
    // Node hands header bytes over one character each (latin1): what they spell in UTF-8 is
    // what the origin reads, and what Unicode folding must see (fullwidth, zero-width).
    const utf8 = Buffer.from(value, 'latin1').toString('utf8');
    if (utf8 !== value) views.push({ text: utf8, where });
    for (const decoded of decodedReadings(value)) views.push({ text: decoded, where });
    for (const decoded of [
      jsonUnescaped(value),
      characterReferencesDecoded(value),
      quotedPrintableDecoded(value),
      encodedWordsDecoded(value),
    ])
      if (decoded !== undefined) views.push({ text: decoded, where });
    const basic = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
    if (basic?.[1]) views.push({ text: Buffer.from(basic[1], 'base64').toString('utf8'), where });
  }
  return withUnicodeFolded(views);
}

export type BodyViews = { ok: true; views: View[] } | { ok: false; reason: string };

/**
 * The body as text, after undoing its Content-Encoding (never beyond `maxBytes`). A compressed
 * body is scanned as sent too: what is forwarded is those bytes, and a gzip header's name,
 * comment and extra field never appear in the decoded data.
 */
export function bodyViews(
  body: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): BodyViews {
  const decoded = decodeBody(body, contentEncoding, maxBytes);
  return decoded.ok ? { ok: true, views: decodedBodyViews(body, decoded.body) } : decoded;
}

/** The views of a body as sent and with its Content-Encoding undone (the same when none). */
export function decodedBodyViews(sent: Buffer, decoded: Buffer): View[] {
  const views = textViews(decoded.toString('utf8'), 'body');
  if (decoded !== sent) views.unshift({ text: sent.toString('utf8'), where: 'body' });
  return views;
}

/**
 * A text as sent, URL-decoded (form bodies), the strings inside it if it is JSON, and with
 * quoted-printable or character references decoded where it has them. JSON escapes are undone
 * again in what the first decodings give: JSON in a JSON string or in a form field.
 */
export function textViews(text: string, where: string): View[] {
  const texts = [text];
  for (const decoded of decodedReadings(text)) texts.push(...withJsonUnescaped(decoded));
  const strings = jsonStrings(text) ?? jsonUnescaped(text);
  if (strings !== undefined) texts.push(...withJsonUnescaped(strings));
  const references = characterReferencesDecoded(text);
  if (references !== undefined) texts.push(references);
  const form = text.replaceAll('+', ' ');
  const views = [...new Set(texts)].map((view): View =>
    // Spaces for `+` alone only cut the text's base64 runs in pieces: nothing new to decode.
    view === form && form !== text
      ? { text: view, where, decodeRuns: false }
      : { text: view, where },
  );
  // Its encoded runs are not decoded again: quoted-printable carries text, and the `=` ending
  // a base64 part's last line before CRLF reads as a soft break that joins the blob to the
  // next line, a second copy of a blob of megabytes to decode.
  const quotedPrintable = quotedPrintableDecoded(text);
  if (quotedPrintable !== undefined)
    views.push({ text: quotedPrintable, where, decodeRuns: false });
  return withUnicodeFolded(views);
}

/** A text a first decoding gave, and its JSON escapes undone: JSON in a string or a form field. */
function withJsonUnescaped(text: string): string[] {
  const unescaped = jsonUnescaped(text);
  return unescaped === undefined ? [text] : [text, unescaped];
}

const EQUALS = 0x3d;

/**
 * MIME encoded words (RFC 2047: `=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`) decoded, and joined where
 * only whitespace separates them, as a mail reader joins them: a secret cut over two words is
 * whole again. Undefined for a value with none.
 */
function encodedWordsDecoded(value: string): string | undefined {
  if (!value.includes('=?')) return undefined;
  const decoded = value
    .replace(BETWEEN_ENCODED_WORDS, '?=')
    .replace(ENCODED_WORD, (_word, encoding: string, text: string) =>
      encoding === 'B' || encoding === 'b'
        ? Buffer.from(text, 'base64').toString('utf8')
        : (quotedPrintableDecoded(text.replaceAll('_', ' ')) ?? text.replaceAll('_', ' ')),
    );
  return decoded === value ? undefined : decoded;
}

const ENCODED_WORD = /=\?[^?\s]+\?([BbQq])\?([^?\s]*)\?=/g;
const BETWEEN_ENCODED_WORDS = /\?=\s+(?==\?[^?\s]+\?[BbQq]\?)/g;

/**
 * Quoted-printable (MIME bodies, `.eml` files, encoded words in headers) decoded: `=XX` is a
 * byte, `=` at a line's end joins it to the next. Undefined for a text with neither: one
 * escape is enough to hide a secret (`ghp=5F…`).
 */
function quotedPrintableDecoded(text: string): string | undefined {
  if (!/=(?:[0-9A-Fa-f]{2}|\r?\n)/.test(text)) return undefined;
  const sent = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(sent.length);
  let length = 0;
  for (let i = 0; i < sent.length; i++) {
    const byte = sent[i] as number;
    if (byte === EQUALS) {
      const high = hexDigit(sent[i + 1]);
      const low = hexDigit(sent[i + 2]);
      if (high >= 0 && low >= 0) {
        out[length++] = high * 16 + low;
        i += 2;
        continue;
      }
      const softBreak =
        sent[i + 1] === 0x0a ? 1 : sent[i + 1] === 0x0d && sent[i + 2] === 0x0a ? 2 : 0;
      if (softBreak > 0) {
        i += softBreak;
        continue;
      }
    }
    out[length++] = byte;
  }
  return out.subarray(0, length).toString('utf8');
}

function hexDigit(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/**
 * Numeric references as an HTML parser reads them (any number of leading zeros, the `;` may
 * be left out) and named ones for every ASCII character HTML names (`&lowbar;` is `_`) and
 * for the invisible ones (`&shy;`).
 */
const CHARACTER_REFERENCE = /&(?:#0*([0-9]{1,8})|#[xX]0*([0-9A-Fa-f]{1,7}));?|&([A-Za-z]+);/g;
const NAMED: Record<string, string> = {
  Tab: '\t',
  NewLine: '\n',
  nbsp: ' ',
  excl: '!',
  quot: '"',
  QUOT: '"',
  num: '#',
  dollar: '$',
  percnt: '%',
  amp: '&',
  AMP: '&',
  apos: "'",
  lpar: '(',
  rpar: ')',
  ast: '*',
  midast: '*',
  plus: '+',
  comma: ',',
  period: '.',
  sol: '/',
  colon: ':',
  semi: ';',
  lt: '<',
  LT: '<',
  equals: '=',
  gt: '>',
  GT: '>',
  quest: '?',
  commat: '@',
  lsqb: '[',
  lbrack: '[',
  bsol: '\\',
  rsqb: ']',
  rbrack: ']',
  Hat: '^',
  lowbar: '_',
  UnderBar: '_',
  grave: '`',
  DiacriticalGrave: '`',
  lcub: '{',
  lbrace: '{',
  verbar: '|',
  vert: '|',
  VerticalLine: '|',
  rcub: '}',
  rbrace: '}',
  fjlig: 'fj',
  // Names of characters that show nothing: read again without them (unicode-folding.ts).
  shy: '\u00ad',
  ZeroWidthSpace: '\u200b',
  NegativeVeryThinSpace: '\u200b',
  NegativeThinSpace: '\u200b',
  NegativeMediumSpace: '\u200b',
  NegativeThickSpace: '\u200b',
  zwnj: '\u200c',
  zwj: '\u200d',
  lrm: '\u200e',
  rlm: '\u200f',
  NoBreak: '\u2060',
  af: '\u2061',
  ApplyFunction: '\u2061',
  it: '\u2062',
  InvisibleTimes: '\u2062',
  ic: '\u2063',
  InvisibleComma: '\u2063',
};

/** XML and HTML character references (`&amp;`, `&#43;`, `&#x2B;`) decoded; without any, undefined. */
function characterReferencesDecoded(text: string): string | undefined {
  if (!text.includes('&')) return undefined;
  const decoded = text.replace(
    CHARACTER_REFERENCE,
    (reference, decimal: string | undefined, hex: string | undefined, name: string | undefined) => {
      if (name !== undefined)
        return Object.hasOwn(NAMED, name) ? (NAMED[name] as string) : reference;
      const code = decimal !== undefined ? Number(decimal) : parseInt(hex ?? '', 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : reference;
    },
  );
  return decoded === text ? undefined : decoded;
}

const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))/g;
const ESCAPED: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * A text that is not one JSON document (JSON lines, a JSON prefix guard, a string literal in
 * code) with its JSON escapes undone wherever they are; undefined if it has none.
 */
function jsonUnescaped(text: string): string | undefined {
  if (!text.includes('\\')) return undefined;
  const unescaped = text.replace(JSON_ESCAPE, (_escape, code: string | undefined, char: string) =>
    code !== undefined ? String.fromCharCode(parseInt(code, 16)) : (ESCAPED[char] ?? char),
  );
  return unescaped === text ? undefined : unescaped;
}

/**
 * Every string literal (keys too) of a JSON document, in order: `\u` escapes cannot hide a
 * secret. Read from the text, not from what JSON.parse builds: that keeps only the last of a
 * key given twice, and an earlier value must not go unread. A blank line between them ends
 * an encoded run there, so a key is not read as the first line of its value's blob (which
 * would decode that blob a second time). An array of byte values (Node's JSON for a Buffer)
 * is read as the text those bytes spell. Loops, not recursion or regular expressions: a body
 * nested a million levels deep, or one string of megabytes, must not overflow the stack.
 */
function jsonStrings(text: string): string | undefined {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[' && start !== '"') return undefined;
  try {
    JSON.parse(text);
  } catch {
    return undefined;
  }
  const out: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      const end = stringLiteralEnd(text, i);
      const literal = text.slice(i, end + 1);
      out.push(literal.includes('\\') ? (JSON.parse(literal) as string) : literal.slice(1, -1));
      i = end;
    } else if (code === OPEN_BRACKET) {
      const bytes = byteArrayAt(text, i);
      if (bytes !== undefined) {
        out.push(Buffer.from(bytes.values).toString('utf8'));
        i = bytes.end;
      }
    }
  }
  return out.join('\n\n');
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/** Where the string literal opening at `start` of a valid JSON text closes. */
function stringLiteralEnd(text: string, start: number): number {
  let i = start + 1;
  while (text.charCodeAt(i) !== QUOTE) i += text.charCodeAt(i) === BACKSLASH ? 2 : 1;
  return i;
}

/** Shorter arrays of small numbers are numbers, not a credential's bytes. */
const MIN_BYTE_ARRAY = 16;

/**
 * The byte values of the array opening at `start` of a valid JSON text and where it closes,
 * if it holds nothing but MIN_BYTE_ARRAY or more integers from 0 to 255.
 */
function byteArrayAt(text: string, start: number): { values: number[]; end: number } | undefined {
  const values: number[] = [];
  let i = start + 1;
  for (;;) {
    i = afterWhitespace(text, i);
    const digitsFrom = i;
    let value = 0;
    for (let code = text.charCodeAt(i); isDigit(code); code = text.charCodeAt(++i))
      value = value * 10 + code - 0x30;
    if (i === digitsFrom || i - digitsFrom > 3 || value > 255) return undefined;
    values.push(value);
    i = afterWhitespace(text, i);
    const code = text.charCodeAt(i);
    if (code === CLOSE_BRACKET)
      return values.length >= MIN_BYTE_ARRAY ? { values, end: i } : undefined;
    if (code !== COMMA) return undefined;
    i++;
  }
}

const isDigit = (code: number): boolean => code >= 0x30 && code <= 0x39;

function afterWhitespace(text: string, at: number): number {
  let i = at;
  while (JSON_WHITESPACE.has(text.charCodeAt(i))) i++;
  return i;
}

/** Space, tab, LF and CR. */
const JSON_WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

type Decoded = { ok: true; body: Buffer } | { ok: false; reason: string };

type Decoder = (body: Buffer, maxOutputLength: number) => ZlibResult;
interface ZlibResult {
  readonly buffer: Buffer;
  /** How many of the input's bytes the decoder consumed. */
  readonly engine: { readonly bytesWritten: number };
}

/** A zlib decoder asked for `info` (untyped in @types/node): its output and what it consumed. */
const measured =
  (decompress: (body: Buffer, options: { maxOutputLength: number }) => Buffer): Decoder =>
  (body, maxOutputLength) => {
    const options = { maxOutputLength, info: true };
    return decompress(body, options) as unknown as ZlibResult;
  };

const inflateZlib = measured(inflateSync);
const inflateRaw = measured(inflateRawSync);

const DECODERS: Record<string, Decoder> = {
  gzip: measured(gunzipSync),
  'x-gzip': measured(gunzipSync),
  // "deflate" is zlib-wrapped by the standard, raw in some clients' hands: accept both, but
  // not a body crafted to be both, whose raw reading (Go's, Java's nowrap) the scan would miss.
  deflate: (body, maxOutputLength) => {
    let zlib: ZlibResult;
    try {
      zlib = inflateZlib(body, maxOutputLength);
    } catch (error) {
      if (error instanceof RangeError) throw error;
      return inflateRaw(body, maxOutputLength);
    }
    if (readsAsRawDeflate(body, maxOutputLength))
      throw new Error('it reads both as zlib and as raw deflate, which origins read differently');
    return zlib;
  },
  br: measured(brotliDecompressSync),
};

function readsAsRawDeflate(body: Buffer, maxOutputLength: number): boolean {
  try {
    inflateRaw(body, maxOutputLength);
    return true;
  } catch (error) {
    return error instanceof RangeError;
  }
}

/**
 * Content codings a scan undoes at most: clients apply one, rarely two, and each is a pass over
 * the body on the engine's thread (thousands of empty gzip layers held it for seconds).
 */
const MAX_CONTENT_CODINGS = 4;

/** The body with its Content-Encoding undone, never beyond `maxBytes`. */
export function decodeBody(
  body: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): Decoded {
  const codings = (contentEncoding ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
  if (codings.length > MAX_CONTENT_CODINGS)
    return {
      ok: false,
      reason: `the body has ${codings.length} content codings; at most ${MAX_CONTENT_CODINGS} are undone for scanning`,
    };
  let current = body;
  // Codings are listed in the order they were applied: undo them from the last.
  for (const coding of codings.reverse()) {
    const decoder = DECODERS[coding];
    if (decoder === undefined)
      return { ok: false, reason: `cannot scan a body with Content-Encoding ${coding}` };
    let result: ZlibResult;
    try {
      result = decoder(current, maxBytes);
    } catch (error) {
      return {
        ok: false,
        reason:
          error instanceof RangeError
            ? `the ${coding}-decoded body exceeds the scan limit of ${maxBytes} bytes`
            : `the ${coding}-encoded body cannot be decoded for scanning (${(error as Error).message})`,
      };
    }
    // Bytes after the compressed data are dropped by the decoder, not by the origin's.
    const trailing = current.length - result.engine.bytesWritten;
    if (trailing > 0)
      return {
        ok: false,
        reason: `the ${coding}-encoded body has ${trailing} bytes after the end of its compressed data, which cannot be scanned`,
      };
    current = result.buffer;
  }
  return { ok: true, body: current };
}
