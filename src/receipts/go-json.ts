// The bytes Go's encoding/json writes: HTML-safe string escaping and compaction of raw values.
// Pipelock signs and hashes these bytes, so every rule here is byte-for-byte Go's.

const SHORT_ESCAPES: Readonly<Record<number, string>> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x3c: '\\u003c',
  0x3e: '\\u003e',
  0x26: '\\u0026',
  0x2028: '\\u2028',
  0x2029: '\\u2029',
};

/** What goString rewrites: controls, `"`, `\\`, `<`, `>`, `&`, U+2028/2029 and surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/** A JSON string literal as Go writes it; lone surrogates become U+FFFD like Go's invalid UTF-8. */
export function goString(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return `"${value}"`;
  let out = '"';
  let chunkStart = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    let replacement: string | undefined;
    if (code < 0x20) {
      replacement = SHORT_ESCAPES[code] ?? `\\u00${code.toString(16).padStart(2, '0')}`;
    } else if (code === 0x22 || code === 0x5c || code === 0x3c || code === 0x3e || code === 0x26) {
      replacement = SHORT_ESCAPES[code];
    } else if (code === 0x2028 || code === 0x2029) {
      replacement = SHORT_ESCAPES[code];
    } else if (code >= 0xd800 && code <= 0xdfff) {
      const next = value.charCodeAt(i + 1);
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      replacement = '\ufffd';
    }
    if (replacement === undefined) continue;
    out += value.slice(chunkStart, i) + replacement;
    chunkStart = i + 1;
  }
  return out + value.slice(chunkStart) + '"';
}

/**
 * JSON text with U+0085 (NEL) written as `\u0085`. Go leaves it raw, and Python's
 * str.splitlines() (pipelock-verify-python) ends a line there: one NEL in a receipt made that
 * verifier refuse the whole evidence file. JSON readers take both spellings as the same value.
 */
export function escapeNextLine(json: string): string {
  return json.replaceAll('\u0085', '\\u0085');
}

/**
 * Go's json.Compact with HTML escaping, applied to the source text of a value (what Go does when
 * it re-marshals a json.RawMessage): whitespace outside strings goes, `<`, `>`, `&`, U+2028 and
 * U+2029 get escaped, everything else (key order, number spelling, existing escapes) stays.
 * The input must already be valid JSON.
 */
export function compactRaw(raw: string): string {
  let out = '';
  let inString = false;
  let chunkStart = 0;
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    let replacement: string | undefined;
    if (inString) {
      if (code === 0x5c) {
        i++; // the escaped character cannot end the string
        continue;
      }
      if (code === 0x22) inString = false;
      else if (
        code === 0x3c ||
        code === 0x3e ||
        code === 0x26 ||
        code === 0x2028 ||
        code === 0x2029
      ) {
        replacement = SHORT_ESCAPES[code];
      }
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) {
      replacement = '';
    }
    if (replacement === undefined) continue;
    out += raw.slice(chunkStart, i) + replacement;
    chunkStart = i + 1;
  }
  return out + raw.slice(chunkStart);
}
