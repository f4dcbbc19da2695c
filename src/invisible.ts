// Characters that would hide or reorder what a reader sees: control characters (a newline that
// forges a log line, an escape sequence that repaints the terminal), format characters (zero
// width, soft hyphen, bidirectional overrides: a target that displays as another), line and
// paragraph separators, half a surrogate pair, and every character Unicode says to render as
// nothing (combining grapheme joiner, Hangul fillers, variation selectors: bytes can be hidden
// in runs of them; not U+FE0F, which asks for an emoji's colour form and follows most emoji).
// Shown as \u escapes.

const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]|(?!\ufe0f)\p{Default_Ignorable_Code_Point}/gu;

/** `text` with every invisible character as a \u escape, except those in `keep`. */
export function showInvisible(text: string, keep = ''): string {
  return text.replace(INVISIBLE, (c) => (keep.includes(c) ? c : escaped(c.codePointAt(0) ?? 0)));
}

function escaped(codePoint: number): string {
  const hex = codePoint.toString(16);
  return codePoint > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
}

/**
 * JSON text with every invisible character as a JSON \u escape: the same value, printable as is.
 * JSON.stringify escapes only C0 controls and half surrogate pairs.
 */
export function escapeInvisibleInJson(json: string): string {
  return json.replace(INVISIBLE, (c) => {
    let units = '';
    for (let i = 0; i < c.length; i++)
      units += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return units;
  });
}

/** Lines of text for a terminal, each with its invisible characters escaped, newline-ended. */
export function terminalText(lines: readonly string[]): string {
  return `${lines.map((line) => showInvisible(line)).join('\n')}\n`;
}
