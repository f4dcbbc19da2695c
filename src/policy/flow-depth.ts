// A flood of `[` or `{` costs the YAML parser seconds and a gigabyte before it gives up, out
// of stack; the lexer alone sees it at once.
import { Lexer } from 'yaml';

/** Far beyond any policy (which nests flow collections two or three deep). */
export const MAX_FLOW_DEPTH = 64;

/** Tokens the lexer adds that are not in the source: document, flow-error end, scalar. */
const NOT_IN_SOURCE = new Set(['\x02', '\x18', '\x1f']);

/** The offset of the first `[` or `{` nested deeper than MAX_FLOW_DEPTH, if any. */
export function tooDeepFlowOffset(text: string): number | undefined {
  let offset = 0;
  let depth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === '[' || token === '{') {
      if (++depth > MAX_FLOW_DEPTH) return offset;
    } else if (token === ']' || token === '}') depth--;
    if (!NOT_IN_SOURCE.has(token)) offset += token.length;
  }
  return undefined;
}
