// The engine's and the viewer's JSON lines (stdout, stderr, engine.log): what a client sent
// reaches them, and a terminal reading them must show it, not obey it.
import { escapeInvisibleInJson } from '../invisible.js';

/** `value` as one line of JSON, every invisible character escaped. */
export function jsonLine(value: unknown): string {
  return `${escapeInvisibleInJson(JSON.stringify(value))}\n`;
}
