// Strict JSON reader for signed and hashed data. Every node remembers where it sits in the source
// so callers can hash a value's raw text (receipt `ext`, recorder `detail`); numbers stay as text
// so uint64 fields keep their exact value; duplicate keys, trailing tokens and deep nesting fail.

export const MAX_JSON_DEPTH = 128;

interface Span {
  /** Offset of the node's first character in the source (UTF-16 units). */
  readonly start: number;
  /** Offset just after the node's last character. */
  readonly end: number;
}

export interface JsonNull extends Span {
  readonly kind: 'null';
}
export interface JsonBool extends Span {
  readonly kind: 'bool';
  readonly value: boolean;
}
export interface JsonNumber extends Span {
  readonly kind: 'number';
  /** The number exactly as written, e.g. `1.0`, `-0`, `18446744073709551615`. */
  readonly text: string;
}
export interface JsonString extends Span {
  readonly kind: 'string';
  /** Decoded value; lone surrogate escapes decode to U+FFFD, as Go does. */
  readonly value: string;
}
export interface JsonArray extends Span {
  readonly kind: 'array';
  readonly items: readonly JsonNode[];
}
export interface JsonObject extends Span {
  readonly kind: 'object';
  /** Members in source order (keys are unique). */
  readonly members: ReadonlyMap<string, JsonNode>;
}
export type JsonNode = JsonNull | JsonBool | JsonNumber | JsonString | JsonArray | JsonObject;

export interface JsonDocument {
  readonly source: string;
  readonly root: JsonNode;
}

export type JsonResult = { ok: true; doc: JsonDocument } | { ok: false; error: string };

export function parseJson(source: string): JsonResult {
  try {
    const parser = new Parser(source);
    parser.skipWhitespace();
    const root = parser.value(0);
    parser.skipWhitespace();
    if (parser.pos < source.length) parser.fail('unexpected data after the top-level value');
    return { ok: true, doc: { source, root } };
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { ok: false, error: err.message };
    throw err;
  }
}

/** The source text of a node, exactly as written. */
export function rawText(doc: JsonDocument, node: JsonNode): string {
  return doc.source.slice(node.start, node.end);
}

export function describeKind(node: JsonNode): string {
  return node.kind === 'bool' ? 'boolean' : node.kind;
}

class JsonSyntaxError extends Error {}

class Parser {
  pos = 0;
  constructor(private readonly src: string) {}

  fail(message: string): never {
    throw new JsonSyntaxError(`invalid JSON at offset ${this.pos}: ${message}`);
  }

  skipWhitespace(): void {
    for (;;) {
      const c = this.src.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  value(depth: number): JsonNode {
    const start = this.pos;
    const c = this.src[this.pos];
    switch (c) {
      case '{':
        return this.object(depth + 1);
      case '[':
        return this.array(depth + 1);
      case '"':
        return { kind: 'string', value: this.string(), start, end: this.pos };
      case 't':
        this.literal('true');
        return { kind: 'bool', value: true, start, end: this.pos };
      case 'f':
        this.literal('false');
        return { kind: 'bool', value: false, start, end: this.pos };
      case 'n':
        this.literal('null');
        return { kind: 'null', start, end: this.pos };
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(
          c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`,
        );
    }
  }

  private literal(word: string): void {
    if (this.src.startsWith(word, this.pos)) this.pos += word.length;
    else this.fail(`expected ${word}`);
  }

  private number(): JsonNumber {
    const match = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.src);
    if (!m) return this.fail('malformed number');
    const start = this.pos;
    this.pos += m[0].length;
    return { kind: 'number', text: m[0], start, end: this.pos };
  }

  // Walks the string with a local index (this is the parser's innermost loop); `this.pos` is
  // brought up to date before an escape is read or an error is raised.
  private string(): string {
    const src = this.src;
    let pos = this.pos + 1; // opening quote
    let out = '';
    let chunkStart = pos;
    for (;;) {
      const code = src.charCodeAt(pos);
      if (code >= 0x20 && code !== 0x22 && code !== 0x5c && (code < 0xd800 || code > 0xdfff)) {
        pos++;
        continue;
      }
      this.pos = pos;
      if (Number.isNaN(code)) this.fail('unterminated string');
      if (code === 0x22) {
        this.pos = pos + 1;
        return out + src.slice(chunkStart, pos);
      }
      if (code < 0x20) this.fail('control character in string');
      if (code >= 0xd800 && code <= 0xdfff) {
        // A raw surrogate is only well-formed as a high+low pair.
        const next = src.charCodeAt(pos + 1);
        if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          pos += 2;
        } else {
          out += src.slice(chunkStart, pos) + '\ufffd';
          chunkStart = ++pos;
        }
        continue;
      }
      out += src.slice(chunkStart, pos) + this.escape();
      pos = chunkStart = this.pos;
    }
  }

  private escape(): string {
    const e = this.src[this.pos + 1];
    this.pos += 2;
    switch (e) {
      case '"':
        return '"';
      case '\\':
        return '\\';
      case '/':
        return '/';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'u': {
        const unit = this.hex4(this.pos);
        this.pos += 4;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          // Go pairs a high surrogate only with an immediately following escaped low surrogate.
          if (this.src.startsWith('\\u', this.pos)) {
            const low = this.hex4(this.pos + 2);
            if (low >= 0xdc00 && low <= 0xdfff) {
              this.pos += 6;
              return String.fromCharCode(unit, low);
            }
          }
          return '\ufffd';
        }
        if (unit >= 0xdc00 && unit <= 0xdfff) return '\ufffd';
        return String.fromCharCode(unit);
      }
      default:
        this.pos -= 1;
        return this.fail('invalid escape in string');
    }
  }

  private hex4(at: number): number {
    const digits = this.src.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) {
      this.pos = at;
      this.fail('invalid \\u escape');
    }
    return parseInt(digits, 16);
  }

  private array(depth: number): JsonArray {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const start = this.pos;
    this.pos++;
    const items: JsonNode[] = [];
    this.skipWhitespace();
    if (this.src[this.pos] === ']') {
      this.pos++;
      return { kind: 'array', items, start, end: this.pos };
    }
    for (;;) {
      this.skipWhitespace();
      items.push(this.value(depth));
      this.skipWhitespace();
      const c = this.src[this.pos];
      this.pos++;
      if (c === ']') return { kind: 'array', items, start, end: this.pos };
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or ']' in array");
      }
    }
  }

  private object(depth: number): JsonObject {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    const start = this.pos;
    this.pos++;
    const members = new Map<string, JsonNode>();
    this.skipWhitespace();
    if (this.src[this.pos] === '}') {
      this.pos++;
      return { kind: 'object', members, start, end: this.pos };
    }
    for (;;) {
      this.skipWhitespace();
      if (this.src[this.pos] !== '"') this.fail('expected a string key');
      const keyAt = this.pos;
      const key = this.string();
      if (members.has(key)) {
        this.pos = keyAt;
        this.fail(`duplicate key ${JSON.stringify(key)}`);
      }
      this.skipWhitespace();
      if (this.src[this.pos] !== ':') this.fail("expected ':' after key");
      this.pos++;
      this.skipWhitespace();
      members.set(key, this.value(depth));
      this.skipWhitespace();
      const c = this.src[this.pos];
      this.pos++;
      if (c === '}') return { kind: 'object', members, start, end: this.pos };
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or '}' in object");
      }
    }
  }
}
