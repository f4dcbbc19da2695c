// `_method` in a POST body: Rails (Rack::MethodOverride), Laravel and Symfony take it as the
// request's real method, Laravel from a JSON body too. Rack reads a POST without a
// Content-Type as a form.

import type { MethodOverride } from './admission.js';

const SOURCE = 'the body field _method';

type BodyKind = 'form' | 'multipart' | 'json';

/** How frameworks read this POST body for `_method`; undefined when they do not. */
export function overridableBody(
  method: string,
  contentType: string | undefined,
): BodyKind | undefined {
  if (method !== 'POST') return undefined;
  const type = (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
  if (type === '' || type === 'application/x-www-form-urlencoded') return 'form';
  if (type === 'multipart/form-data') return 'multipart';
  if (/^[a-z0-9!#$&^_.+-]+\/(?:[a-z0-9!#$&^_.-]+\+)?json$/.test(type)) return 'json';
  return undefined;
}

/** Each method a POST body of this kind asks for (its Content-Encoding already undone). */
export function bodyMethodOverrides(
  body: Buffer,
  kind: BodyKind,
  contentType: string | undefined,
): MethodOverride[] {
  const asked = (values: readonly string[]) =>
    values.map((value) => ({ source: SOURCE, method: value.trim().toUpperCase() }));
  switch (kind) {
    case 'form':
      return asked(new URLSearchParams(body.toString('utf8')).getAll('_method'));
    case 'json':
      return asked(jsonMethod(body.toString('utf8')));
    case 'multipart':
      return asked(multipartMethods(body.toString('latin1'), boundaryOf(contentType ?? '')));
  }
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
 * The values of parts named `_method` (quoted or not, any case: reading one too many is only
 * stricter). Without a boundary nothing can read the parts, so there is nothing to find.
 */
function multipartMethods(text: string, boundary: string | undefined): string[] {
  if (boundary === undefined) return [];
  return text.split(`--${boundary}`).flatMap((part) => {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) return [];
    const headers = part.slice(0, headerEnd);
    if (!/^content-disposition:[^\r\n]*;\s*name\*?=\s*"?_method"?\s*(?:;|\r|$)/im.test(headers))
      return [];
    return [Buffer.from(part.slice(headerEnd + 4).replace(/\r\n$/, ''), 'latin1').toString()];
  });
}
