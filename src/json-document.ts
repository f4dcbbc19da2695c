// A JSON document read against a zod schema: its value, or the first thing wrong with it
// named by its path in the document.
import type * as z from 'zod';

export type DocumentReading<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export function readJsonDocument<S extends z.ZodType>(
  schema: S,
  text: string,
): DocumentReading<z.output<S>> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `not JSON: ${(error as Error).message}` };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where =
    issue === undefined || issue.path.length === 0 ? 'the document' : issue.path.join('.');
  return { ok: false, error: `${where}: ${issue?.message ?? 'invalid'}` };
}
