// Where two JSON values differ, as dotted paths a reader can find in the file. Pure.
import { shortened } from '../../shorten.js';

function show(value: unknown): string {
  return shortened(JSON.stringify(value) ?? String(value), 80);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The differences of `actual` from `expected`, in document order, at most `limit` of them. */
export function jsonDifferences(actual: unknown, expected: unknown, limit = 3): string[] {
  const found: string[] = [];
  const walk = (a: unknown, e: unknown, path: string): void => {
    if (found.length >= limit) return;
    const name = path === '' ? 'the document' : path;
    if (isObject(a) && isObject(e)) {
      for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
        const at = path === '' ? key : `${path}.${key}`;
        if (!(key in a)) found.push(`${at} is missing`);
        else if (!(key in e)) found.push(`${at} should not be there`);
        else walk(a[key], e[key], at);
        if (found.length >= limit) return;
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(e) && a.length === e.length) {
      a.forEach((item, i) => walk(item, e[i], `${path}[${i}]`));
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(e))
      found.push(`${name} is ${show(a)}, should be ${show(e)}`);
  };
  walk(actual, expected, '');
  return found;
}
