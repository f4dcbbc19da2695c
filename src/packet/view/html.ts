// HTML built by a tagged template that escapes every interpolated value unless it is already
// Html, so text from a packet (targets, reasons, the policy) can never become markup. Pure.

export class Html {
  constructor(readonly text: string) {}
}

export type HtmlValue = Html | string | number | bigint | null | undefined | readonly HtmlValue[];

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

// Control characters, zero-width characters and bidirectional overrides would hide or reorder
// what a reviewer reads (a target that displays as another): they are shown as \u escapes.
// Line feeds and tabs stay, for the policy text.
const INVISIBLE =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must be shown
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

export function escapeHtml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
    .replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let text = strings[0] ?? '';
  values.forEach((value, i) => {
    text += render(value) + (strings[i + 1] ?? '');
  });
  return new Html(text);
}
