// Characters that would hide or reorder what a reader sees: control characters (a newline that
// forges a log line, an escape sequence that repaints the terminal), format characters (zero
// width, soft hyphen, bidirectional overrides: a target that displays as another), line and
// paragraph separators, variation selectors (bytes can be hidden in runs of them; not U+FE0F,
// which asks for an emoji's colour form and follows most emoji) and the Hangul fillers that
// render as nothing. Shown as \u escapes.

// Variation selectors and the Hangul choseong and jungseong fillers are alternatives of their
// own: in a character class they would combine with the character before them.
const INVISIBLE =
  /[\p{Cc}\p{Cf}\u2028\u2029\u3164\uffa0]|(?!\ufe0f)\p{Variation_Selector}|\u115f|\u1160/gu;

/** `text` with every invisible character as a \u escape, except those in `keep`. */
export function showInvisible(text: string, keep = ''): string {
  return text.replace(INVISIBLE, (c) => (keep.includes(c) ? c : escaped(c.codePointAt(0) ?? 0)));
}

function escaped(codePoint: number): string {
  const hex = codePoint.toString(16);
  return codePoint > 0xffff ? `\\u{${hex}}` : `\\u${hex.padStart(4, '0')}`;
}
