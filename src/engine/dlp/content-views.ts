// What the secret scanner reads in a request beyond its URL: each forwarded header, the body
// (decompressed within a limit, URL-decoded, JSON strings unescaped) and WebSocket messages.

import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { percentDecodings, type View } from './secret-scan.js';

/** One view per header, plus its decoded spellings (percent-encoding, Basic credentials). */
export function headerViews(headers: readonly string[]): View[] {
  const views: View[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] ?? '';
    const value = headers[i + 1] ?? '';
    const where = `header ${name}`;
    views.push({ text: `${name}: ${value}`, where });
    for (const decoded of percentDecodings(value)) views.push({ text: decoded, where });
    const basic = /^\s*basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(value);
    if (basic?.[1]) views.push({ text: Buffer.from(basic[1], 'base64').toString('utf8'), where });
  }
  return views;
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

/** A text as sent, URL-decoded (form bodies), and the strings inside it if it is JSON. */
export function textViews(text: string, where: string): View[] {
  const views: View[] = [{ text, where }];
  // Form-decoded: `+` is a space, then percent escapes (as many times as they were nested).
  // Spaces for `+` alone only cut the text's base64 runs in pieces: nothing new to decode.
  const form = text.replace(/\+/g, ' ');
  const decodings = percentDecodings(form);
  if (decodings.length > 0) for (const decoded of decodings) views.push({ text: decoded, where });
  else if (form !== text) views.push({ text: form, where, decodeRuns: false });
  const strings = jsonStrings(text) ?? jsonUnescaped(text);
  if (strings !== undefined) views.push({ text: strings, where });
  return views;
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
 * Every string (keys too) of a JSON document, in order: `\u` escapes cannot hide a secret.
 * A blank line between them ends an encoded run there, so a key is not read as the first
 * line of its value's blob (which would decode that blob a second time).
 */
function jsonStrings(text: string): string | undefined {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[' && start !== '"') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  // A stack, not recursion: a body nested a million levels deep parses, and must not overflow.
  const out: string[] = [];
  const stack: unknown[] = [parsed];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') out.push(value);
    else if (Array.isArray(value)) for (let i = value.length - 1; i >= 0; i--) stack.push(value[i]);
    else if (typeof value === 'object' && value !== null) {
      // Pushed last to first, each value under its key: they come off the stack in order.
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, item] = entries[i] as [string, unknown];
        stack.push(item, key);
      }
    }
  }
  return out.join('\n\n');
}

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
  // "deflate" is zlib-wrapped by the standard, raw in some clients' hands: accept both.
  deflate: (body, maxOutputLength) => {
    try {
      return inflateZlib(body, maxOutputLength);
    } catch (error) {
      if (error instanceof RangeError) throw error;
      return inflateRaw(body, maxOutputLength);
    }
  },
  br: measured(brotliDecompressSync),
};

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
