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
    const folded = streamSafe(view.text).normalize('NFKC').replace(INVISIBLE, '');
    if (folded !== view.text) out.push({ ...view, text: folded });
  }
  return out;
}

// eslint-disable-next-line no-control-regex -- the ASCII range is what is tested
const NON_ASCII = /[^\x00-\x7f]/;
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * Runs of more than 30 combining marks broken by U+034F (an invisible starter, removed again
 * after): normalising sorts each run's marks, in time growing with the square of its length
 * (a 256 KiB run took seconds). UAX #15's stream-safe text format breaks them the same way.
 */
function streamSafe(text: string): string {
  return text.replace(LONG_MARK_RUN, (run) => run.replace(THIRTY_MARKS, '$&\u034f'));
}

const LONG_MARK_RUN = /\p{M}{31,}/gu;
const THIRTY_MARKS = /\p{M}{30}/gu;
