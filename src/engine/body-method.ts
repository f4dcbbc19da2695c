// `_method` in a POST body: Rails (Rack::MethodOverride), Laravel and Symfony take it as the
// request's real method, Laravel from a JSON body too. Each reads the Content-Type its own way
// and PHP mangles field names, so a body is read every way one of them would read it.

import type { MethodOverride } from './admission.js';

const SOURCE = 'the body field _method';

type BodyKind = 'form' | 'multipart' | 'json';

/** Rack parses these as multipart; without a boundary, it reads the body as a form. */
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
  if (MULTIPART_TYPES.has(type))
    kinds.push(boundaryOf(header) === undefined ? 'form' : 'multipart');
  if (header.includes('/json') || header.includes('+json')) kinds.push('json');
  return kinds;
}

/**
 * A field PHP hands over as `_method`: it drops leading spaces and reads a `.` or a space in a
 * name as `_` (`.method`); `[` is matched too, which is only stricter.
 */
function isMethodField(name: string): boolean {
  return /^ *[_. []method$/.test(name);
}

/** Each method a POST body of these kinds asks for (its Content-Encoding already undone). */
export function bodyMethodOverrides(
  body: Buffer,
  kinds: readonly BodyKind[],
  contentType: string | undefined,
): MethodOverride[] {
  const asked = (values: readonly string[]) =>
    values.map((value) => ({ source: SOURCE, method: value.trim().toUpperCase() }));
  return kinds.flatMap((kind) => {
    switch (kind) {
      case 'form':
        return asked(formMethods(body.toString('utf8')));
      case 'json':
        return asked(jsonMethod(body.toString('utf8')));
      case 'multipart':
        return asked(multipartMethods(body.toString('latin1'), boundaryOf(contentType ?? '')));
    }
  });
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

function boundaryOf(contentType: string): string | undefined {
  return /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)?.slice(1).find(Boolean);
}

/**
 * The values of parts a framework reads as `_method` (quoted or not, any case: reading one
 * too many is only stricter). Without a boundary nothing can read the parts, so there is
 * nothing to find.
 */
function multipartMethods(text: string, boundary: string | undefined): string[] {
  if (boundary === undefined) return [];
  return text.split(`--${boundary}`).flatMap((part) => {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) return [];
    const headers = part.slice(0, headerEnd);
    if (
      !/^content-disposition:[^\r\n]*;\s*name\*?=\s*"? *[_. []method"?\s*(?:;|\r|$)/im.test(headers)
    )
      return [];
    return [Buffer.from(part.slice(headerEnd + 4).replace(/\r\n$/, ''), 'latin1').toString()];
  });
}
