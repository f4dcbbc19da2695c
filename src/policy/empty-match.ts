// Whether a regular expression can match the empty string, read from its structure rather than
// tried on sample texts: some alternative made only of optional parts (`?`, `*`, `{0,n}`) and
// zero-width ones (`^`, `$`, `\b`, lookarounds, back-references). Lookarounds are taken as
// possibly true, so a pattern said not to match empty never does; one said to may be too
// strict to match at all, which is no loss in a DLP pattern.

/** `source` is a pattern that compiles with the "u" flag. */
export function canMatchEmpty(source: string): boolean {
  let at = 0;
  const next = (): string => {
    const char = String.fromCodePoint(source.codePointAt(at) ?? 0);
    at += char.length;
    return char;
  };
  const skipPast = (end: string): void => {
    at = source.indexOf(end, at) + 1;
  };
  /** What `pattern` (sticky) matches where reading stands, or "". */
  const matchHere = (pattern: RegExp): string => {
    pattern.lastIndex = at;
    return pattern.exec(source)?.[0] ?? '';
  };

  const disjunction = (): boolean => {
    let empty = alternative();
    while (source[at] === '|') {
      at++;
      empty = alternative() || empty;
    }
    return empty;
  };
  const alternative = (): boolean => {
    let empty = true;
    while (at < source.length && source[at] !== '|' && source[at] !== ')') {
      const atomEmpty = atom();
      const optional = quantifierMinimum() === 0;
      empty = (atomEmpty || optional) && empty;
    }
    return empty;
  };
  const atom = (): boolean => {
    const char = next();
    if (char === '^' || char === '$') return true;
    if (char === '[') return characterClass();
    if (char === '\\') return escape();
    if (char === '(') return group();
    return false;
  };
  const characterClass = (): false => {
    while (at < source.length && source[at] !== ']') at += source[at] === '\\' ? 2 : 1;
    at++;
    return false;
  };
  const escape = (): boolean => {
    const char = next();
    if (char === 'b' || char === 'B') return true;
    if (/[1-9]/.test(char)) {
      while (/[0-9]/.test(source[at] ?? '')) at++;
      return true;
    }
    if (char === 'k') {
      skipPast('>');
      return true;
    }
    if ((char === 'u' || char === 'p' || char === 'P') && source[at] === '{') skipPast('}');
    return false;
  };
  const group = (): boolean => {
    let zeroWidth = false;
    if (source[at] === '?') {
      const head = matchHere(GROUP_HEAD) || '?';
      zeroWidth = /[=!]$/.test(head);
      at += head.length;
    }
    const empty = disjunction();
    at++; // ")"
    return zeroWidth || empty;
  };
  /** The least count the quantifier after an atom allows; 1 when there is none. */
  const quantifierMinimum = (): number => {
    const char = source[at];
    let minimum = 1;
    if (char === '*' || char === '?') minimum = 0;
    else if (char === '{') minimum = Number(matchHere(BOUND_MINIMUM).slice(1));
    else if (char !== '+') return 1;
    if (char === '{') skipPast('}');
    else at++;
    if (source[at] === '?') at++; // lazy
    return minimum;
  };

  return disjunction();
}

/** What opens a group after "(": a lookaround, a name, modifiers, or nothing (capturing). */
const GROUP_HEAD = /\?(?:<?[=!]|<[^>]*>|[a-zA-Z-]*:)/y;
const BOUND_MINIMUM = /\{\d+/y;
