// HTML built by a tagged template that escapes every interpolated value unless it is already
// Html, so text from a packet (targets, reasons, the policy) can never become markup. Pure.

import { showInvisible } from '../../invisible.js';

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

/** Invisible characters shown as \u escapes (line feeds and tabs stay, for the policy text). */
export function escapeHtml(text: string): string {
  return showInvisible(
    text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c),
    '\n\t',
  );
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
