// Characters that would hide or reorder what a reader sees: control characters (a newline that
// forges a log line, an escape sequence that repaints the terminal), zero-width characters and
// bidirectional overrides (a target that displays as another). Shown as \u escapes.

const INVISIBLE = /[\p{Cc}\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/gu;

/** `text` with every invisible character as a \u escape, except those in `keep`. */
export function showInvisible(text: string, keep = ''): string {
  return text.replace(INVISIBLE, (c) =>
    keep.includes(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
