// `_method` in a POST body: Rails (Rack::MethodOverride), Laravel and Symfony take it as the
// request's real method, Laravel from a JSON body too. Each reads the Content-Type its own way
// and PHP mangles field names, so a body is read every way one of them would read it; a
// multipart body, which each splits its own way, only where they all split it alike.

import type { MethodOverride } from './admission.js';
import type { Refusal } from './refusal.js';

const SOURCE = 'the body field _method';

type BodyKind = 'form' | 'multipart' | 'json';

/** The methods a body asks for, or why it cannot be known. */
export type BodyMethods =
  { readonly methodOverrides: readonly MethodOverride[] } | { readonly refusal: Refusal };

const NOT_PLAIN: Refusal = {
  status: 403,
  layer: 'method',
  reason:
    'the multipart body is not plain enough to know which method (_method) frameworks take it for, and some method is refused here: send it plain: one `; boundary=` parameter (a token, or quoted without `\\`, `;` or `,`); the boundary only in delimiter lines, each at a line start and ending in CRLF (the closing one in `--`, at the end of the body); part headers as `Name: value` lines ending in CRLF; Content-Disposition parameters as tokens or quoted without `\\`, one `name` at most and no `name*`',
};

/** A token (RFC 9110) without `'`, which PHP reads as a quote. */
const TOKEN = '[!#$%&*+.^_`|~0-9A-Za-z-]+';

/** Rack parses these as multipart; where the type names no boundary, it reads a form. */
const MULTIPART_TYPES = new Set(['multipart/form-data', 'multipart/mixed', 'multipart/related']);

/**
 * How frameworks read this POST body for `_method`: none when no framework does. The media
 * type ends at `;`, `,` or a space (Rack cuts at the first two and drops the whitespace before
 * the cut, such as a tab; PHP cuts at all three); Rack reads a POST without a Content-Type as
 * a form; Laravel reads JSON wherever the header holds `/json` or `+json`.
 */
export function overridableBody(method: string, contentType: string | undefined): BodyKind[] {
  if (method !== 'POST') return [];
  const header = (contentType ?? '').toLowerCase();
  const type = (header.split(/[;, ]/, 1)[0] ?? '').trim();
  const kinds: BodyKind[] = [];
  if (type === '' || type === 'application/x-www-form-urlencoded') kinds.push('form');
  if (MULTIPART_TYPES.has(type)) kinds.push(header.includes('boundary') ? 'multipart' : 'form');
  if (header.includes('/json') || header.includes('+json')) kinds.push('json');
  return kinds;
}

/**
 * A field PHP hands over as `_method`: it ends a name at a NUL (`_method%00x`), drops leading
 * spaces and reads a `.` or a space in a name as `_` (`.method`); `[` is matched too, which is
 * only stricter.
 */
function isMethodField(name: string): boolean {
  return /^ *[_. []method(?:\0|$)/.test(name);
}

/**
 * Each method a POST body of these kinds asks for in any of its readings (as sent, which PHP,
 * Laravel and Symfony read whatever its Content-Encoding, and decoded), or a refusal for a
 * multipart body frameworks may not all read alike.
 */
export function bodyMethodOverrides(
  readings: readonly Buffer[],
  kinds: readonly BodyKind[],
  contentType: string | undefined,
): BodyMethods {
  const values: string[] = [];
  for (const body of readings)
    for (const kind of kinds) {
      const found = fieldValues(body, kind, contentType ?? '');
      if (found === undefined) return { refusal: NOT_PLAIN };
      values.push(...found);
    }
  return {
    methodOverrides: values.map((value) => ({
      source: SOURCE,
      method: value.trim().toUpperCase(),
    })),
  };
}

/** The values of the body's `_method` fields; undefined for a multipart body that is not plain. */
function fieldValues(body: Buffer, kind: BodyKind, contentType: string): string[] | undefined {
  switch (kind) {
    case 'form':
      return formMethods(body.toString('utf8'));
    case 'json':
      return jsonMethod(body.toString('utf8'));
    case 'multipart':
      return multipartMethods(body.toString('latin1'), contentType);
  }
}

/** The values of a form's (or query's) fields a framework reads as `_method`. */
export function formMethods(form: string): string[] {
  return [...new URLSearchParams(form)].flatMap(([name, value]) =>
    isMethodField(name) ? [value] : [],
  );
}

function jsonMethod(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || !('_method' in value)) return [];
    const method = value._method;
    return typeof method === 'string' ? [method] : [];
  } catch {
    return []; // not JSON: no framework reads a field from it
  }
}

/**
 * The values of parts a framework reads as `_method` (in any case: reading one too many is
 * only stricter), or undefined when the body is not plain. Frameworks find the boundary, the
 * delimiters, the part headers and the names each their own way (Rack a boundary anywhere
 * after the type, PHP a delimiter after a bare LF and a name in single quotes, Rack one with
 * `\` unescaped); in a plain body they all find the same.
 */
function multipartMethods(text: string, contentType: string): string[] | undefined {
  const boundary = plainBoundary(contentType);
  const parts = boundary === undefined ? undefined : plainParts(text, boundary);
  if (parts === undefined) return undefined;
  const values: string[] = [];
  for (const { headers, value } of parts) {
    const names = partNames(headers);
    if (names === undefined) return undefined;
    if (names.some((name) => isMethodField(name.toLowerCase())))
      values.push(Buffer.from(value, 'latin1').toString());
  }
  return values;
}

/**
 * The boundary of a Content-Type that names one once, as a `;` parameter every framework
 * reads alike: Rack ends even a quoted one at `;` or `,`.
 */
function plainBoundary(contentType: string): string | undefined {
  if (contentType.toLowerCase().split('boundary').length !== 2) return undefined;
  const match = PLAIN_BOUNDARY.exec(contentType);
  return match?.[1] ?? match?.[2];
}

const PLAIN_BOUNDARY = new RegExp(`;[ \\t]*boundary=(?:(${TOKEN})|"([^"\\\\;,]+)")(?:;|$)`, 'i');

interface Part {
  /** The header lines, without their CRLF. */
  readonly headers: readonly string[];
  readonly value: string;
}

/**
 * The parts of a body whose every `--boundary` starts it or a line and ends in CRLF (or `--`
 * for the closing one, which only a CRLF may follow), each part's header block ending at its
 * first empty line; undefined for any other body.
 */
function plainParts(text: string, boundary: string): Part[] | undefined {
  const delimiter = `--${boundary}`;
  const parts: Part[] = [];
  for (let start = text.indexOf(delimiter); start >= 0;) {
    if (start > 0 && !text.startsWith('\r\n', start - 2)) return undefined;
    const after = start + delimiter.length;
    const ending = text.slice(after, after + 2);
    const next = text.indexOf(delimiter, start + 1);
    if (ending === '--') {
      const rest = text.slice(after + 2);
      return next < 0 && (rest === '' || rest === '\r\n') ? parts : undefined;
    }
    if (ending !== '\r\n') return undefined;
    const part = splitPart(text.slice(after + 2, next < 0 ? text.length : next - 2));
    if (part === undefined) return undefined;
    parts.push(part);
    start = next;
  }
  return parts;
}

/** A part whose header block ends at its first CRLFCRLF and holds only `Name: value` lines. */
function splitPart(part: string): Part | undefined {
  const end = part.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const headers = part.slice(0, end).split('\r\n');
  if (!headers.every((line) => HEADER_LINE.test(line))) return undefined;
  return { headers, value: part.slice(end + 4) };
}

const HEADER_LINE = new RegExp(`^${TOKEN}:[^\\r\\n]*$`);

/**
 * The names a part may go by: its Content-Disposition `name`, and its Content-ID (Rack's name
 * for a part without a Content-Disposition, or with one over 1536 bytes); undefined when a
 * Content-Disposition is not plain.
 */
function partNames(headers: readonly string[]): string[] | undefined {
  const names: string[] = [];
  for (const line of headers) {
    const colon = line.indexOf(':');
    const field = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (field === 'content-id') names.push(value);
    if (field !== 'content-disposition') continue;
    const name = dispositionName(value);
    if (name === undefined) return undefined;
    names.push(...name);
  }
  return names;
}

const PARAMETER = `[ \\t]*;[ \\t]*(${TOKEN})=(${TOKEN}|"[^"\\\\]*")`;
const PLAIN_DISPOSITION = new RegExp(`^${TOKEN}(?:${PARAMETER})*$`);

/**
 * The `name` of a Content-Disposition whose parameters are tokens or quoted without `\` (Rack
 * unescapes it, PHP does not), with one `name` at most (Rack takes the first, PHP the last)
 * and no `name*`; undefined for any other.
 */
function dispositionName(disposition: string): string[] | undefined {
  if (!PLAIN_DISPOSITION.test(disposition)) return undefined;
  const parameters = [...disposition.matchAll(new RegExp(PARAMETER, 'g'))].map(
    ([, key = '', value = '']) => [key.toLowerCase(), value.replace(/^"(.*)"$/, '$1')] as const,
  );
  if (parameters.some(([key]) => key === 'name*')) return undefined;
  const names = parameters.flatMap(([key, value]) => (key === 'name' ? [value] : []));
  return names.length > 1 ? undefined : names;
}
