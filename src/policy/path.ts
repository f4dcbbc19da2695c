// Request paths are compared after normalisation, and must satisfy a rule under every
// plausible reading a server may give them, so that no encoding trick walks out of a prefix.

export type PathReading =
  { ok: true; readings: readonly string[] } | { ok: false; problem: string };

const ENCODED_SEPARATOR = /%(2e|2f|5c|3b)/gi;
const PERCENT_ESCAPE = /%[0-9a-f]{2}/gi;
// Lead bytes only an overlong UTF-8 form starts with (%C0%AE is a dot to a lenient decoder),
// and IIS's %uXXXX escapes.
const OVERLONG_OR_U_ESCAPE = /%c[01]|%e0%[89]|%f0%8|%u[0-9a-f]{4}/i;

/**
 * The readings of a WHATWG-parsed path (dot segments already resolved, `\` already `/`):
 * the path exactly as sent; the path a lenient server routes after decoding `%2e`, `%2f`,
 * `%5c` and `%3b` and merging slashes; and that path with each segment's parameters cut
 * (`;…`), as Tomcat, Jetty and older Spring route it (`/a/..;/b` is `/b` there), once after
 * decoding and once before, as Tomcat cuts them (`/a/..;%2fa/b` is `/b` there: the encoded
 * slash goes with the parameter). A request is allowed by a path rule only if every reading
 * is.
 */
export function pathReadings(pathname: string): PathReading {
  // Anything that still spells an encoded separator after one decoding (`%252e`,
  // `%25%32%65`, …) means different things to servers that decode once or twice.
  const decodedOnce = decodeEscapes(pathname, PERCENT_ESCAPE);
  if (/%(2e|2f|5c|3b)/i.test(decodedOnce)) {
    return {
      ok: false,
      problem: 'the path contains a double-encoded dot, slash, backslash or semicolon',
    };
  }
  if (OVERLONG_OR_U_ESCAPE.test(pathname) || OVERLONG_OR_U_ESCAPE.test(decodedOnce)) {
    return {
      ok: false,
      problem:
        'the path contains an overlong UTF-8 escape (%C0%AE…) or a %uXXXX escape, which lenient servers decode to a dot or a slash',
    };
  }
  const sent = uppercaseEscapes(pathname);
  const decoded = decodedSeparators(sent);
  const readings = [
    sent,
    collapse(decoded),
    collapse(withoutParameters(decoded)),
    collapse(decodedSeparators(withoutParameters(sent))),
  ];
  return { ok: true, readings: [...new Set(readings)] };
}

function decodedSeparators(path: string): string {
  return decodeEscapes(path, ENCODED_SEPARATOR).replaceAll('\\', '/');
}

/** Each segment's parameters (`;…`) cut, up to the next `/`. */
function withoutParameters(path: string): string {
  return path.replace(/;[^/]*/g, '');
}

function decodeEscapes(text: string, escapes: RegExp): string {
  return text.replace(escapes, (escape) => String.fromCharCode(parseInt(escape.slice(1), 16)));
}

/** `%c3` and `%C3` are the same byte; compare one spelling. */
function uppercaseEscapes(text: string): string {
  return text.replace(PERCENT_ESCAPE, (escape) => escape.toUpperCase());
}

/** Merges duplicate slashes and resolves `.` and `..` segments. */
function collapse(path: string): string {
  const out: string[] = [];
  const segments = path.split('/').slice(1);
  for (const [index, segment] of segments.entries()) {
    const last = index === segments.length - 1;
    if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else if (segment === '.' || (segment === '' && !last)) {
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  }
  return `/${out.join('/')}`;
}

/** Why a rule's path prefix is not in canonical form, or undefined when it is. */
export function rulePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (/[?#]/.test(path)) return 'must not contain a query or fragment';
  if (/%(2e|2f|5c|25)/i.test(path) || path.includes('\\')) {
    return 'must not contain encoded dots, slashes, backslashes or percent signs';
  }
  if (/%(?![0-9a-f]{2})/i.test(path))
    return 'holds a "%" that starts no percent-escape (%XX), which servers read differently or refuse; name the path as a URL spells it';
  // A request is judged also as servers read it with each segment's parameters cut (`;…`):
  // that reading of any request under `/a;b/` is under `/a/`, so the rule could never match.
  if (/;|%3b/i.test(path))
    return 'must not contain ";" (or "%3B"): servers that cut a segment\'s parameters read it without them, so no request could match; name the path without parameters';
  if (path.includes('*')) {
    const prefix = path.slice(0, path.indexOf('*'));
    return `holds "*", but paths are literal prefixes, not globs (did you mean "${prefix.slice(0, prefix.lastIndexOf('/') + 1)}"?)`;
  }
  if (collapse(path) !== path) return `is not normalised (did you mean "${collapse(path)}"?)`;
  // Requests are compared in their URL-encoded form, so a prefix must be written that way too.
  const encoded = uppercaseEscapes(new URL(path, 'http://host.invalid').pathname);
  if (encoded !== path)
    return `is not percent-encoded as in a URL, so no request could match it (did you mean "${encoded}"?)`;
  return undefined;
}

/**
 * Segment-aware prefix match: `/repos/acme` covers `/repos/acme` and `/repos/acme/…` but
 * not `/repos/acme-evil`; a prefix ending in `/` covers everything below it.
 */
export function pathWithin(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}
