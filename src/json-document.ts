// A JSON document read against a zod schema: its value, or the first thing wrong with it
// named by its path in the document. A key given twice is refused: readers that keep the first
// and readers that keep the last would each see another document.
import type * as z from 'zod';
import { parseJson } from './receipts/json.js';

export type DocumentReading<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export function readJsonDocument<S extends z.ZodType>(
  schema: S,
  text: string,
): DocumentReading<z.output<S>> {
  const strict = parseJson(text);
  if (!strict.ok) return { ok: false, error: `not JSON: ${strict.error}` };
  const parsed = schema.safeParse(JSON.parse(text));
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where =
    issue === undefined || issue.path.length === 0 ? 'the document' : issue.path.join('.');
  return { ok: false, error: `${where}: ${issue?.message ?? 'invalid'}` };
}
