import type { View } from './secret-scan.js';

/**
 * The views, and after each that changes when folded its folding: compatibility forms
 * made plain (fullwidth `ｇｈｐ＿` is `ghp_`: NFKC) and the code points that show nothing
 * removed (zero-width spaces and joiners, soft hyphens, bidi controls, variation selectors).
 * A reader gets a secret back from either with one call.
 */
export function withUnicodeFolded(views: readonly View[]): View[] {
  const out: View[] = [];
  for (const view of views) {
    out.push(view);
    // ASCII has neither: most texts are done with one test.
    if (!NON_ASCII.test(view.text)) continue;
    const folded = view.text.normalize('NFKC').replace(INVISIBLE, '');
    if (folded !== view.text) out.push({ ...view, text: folded });
  }
  return out;
}

// eslint-disable-next-line no-control-regex -- the ASCII range is what is tested
const NON_ASCII = /[^\x00-\x7f]/;
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;
