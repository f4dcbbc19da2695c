// Feeds raw evidence bytes, chunk by chunk, into an EvidenceVerifier: JSONL (split on "\n" only),
// a JSON array of receipts, or one (possibly pretty-printed) receipt. Memory stays bounded by
// the largest line or receipt, whatever the file size.
import { concatBytes, decodeUtf8 } from './bytes.js';
import type { EvidenceVerifier } from './evidence.js';
import { isBlankLine, MAX_LINE_BYTES } from './evidence.js';
import { parseJson } from './json.js';
import { decodeReceipt } from './receipt.js';

/** `auto` recognises the shape from the content; `lines` is an evidence-*.jsonl shard. */
export type EvidenceShape = 'auto' | 'lines';

const NEWLINE = 0x0a;
const CR = 0x0d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === NEWLINE || byte === CR;
}

/** Bytes collected across chunks, refusing to grow past a cap. */
class Pending {
  private parts: Uint8Array[] = [];
  length = 0;

  add(bytes: Uint8Array): boolean {
    if (bytes.length > 0) this.parts.push(bytes);
    this.length += bytes.length;
    return this.length <= MAX_LINE_BYTES + 1;
  }

  take(): Uint8Array {
    const whole =
      this.parts.length === 1 ? (this.parts[0] ?? new Uint8Array()) : concatBytes(...this.parts);
    this.parts = [];
    this.length = 0;
    return whole;
  }
}

function countNewlines(bytes: Uint8Array): number {
  let count = 0;
  for (let i = bytes.indexOf(NEWLINE); i >= 0; i = bytes.indexOf(NEWLINE, i + 1)) count++;
  return count;
}

export class EvidenceStream {
  private mode: 'sniff' | 'lines' | 'document' | 'array';
  private readonly auto: boolean;
  private readonly pending = new Pending();
  private lineNumber = 0;
  private firstLineError: string | undefined;
  /** A first line that is one receipt: the whole input (judged alone) unless more lines follow. */
  private heldFirst: { readonly text: string; readonly where: string } | undefined;
  private sawContent = false;
  private settled = false;
  // Receipts array scanner state.
  private arrayState: 'open' | 'first' | 'next' | 'value' | 'after' | 'closed' = 'open';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private index = 0;

  constructor(
    private readonly verifier: EvidenceVerifier,
    private readonly label: string,
    shape: EvidenceShape = 'auto',
  ) {
    this.auto = shape === 'auto';
    this.mode = this.auto ? 'sniff' : 'lines';
  }

  /** Feeds the next chunk; false once the verdict is settled and the rest need not be read. */
  write(chunk: Uint8Array): boolean {
    if (this.settled) return false;
    if (this.mode === 'sniff') {
      const first = chunk.findIndex((byte) => !isSpace(byte));
      // Leading blank space only moves line numbers on.
      this.lineNumber += countNewlines(first < 0 ? chunk : chunk.subarray(0, first));
      if (first < 0) return true;
      this.mode = chunk[first] === OPEN_ARRAY ? 'array' : 'lines';
      chunk = chunk.subarray(first);
    }
    if (this.mode === 'array') this.scanArray(chunk);
    else this.splitLines(chunk);
    return !this.settled;
  }

  /**
   * The input ended: flushes a last line without "\n" and checks the shape is complete. A
   * last line that is not JSON was torn by a writer that stopped mid-write: it is reported,
   * and everything before it is still judged.
   */
  end(): void {
    if (this.settled) return;
    if (this.mode === 'lines' && this.pending.length > 0) {
      const last = this.pending.take();
      const text = decodeUtf8(last);
      // White space is a blank line, as it is anywhere else: nothing torn.
      if (text === undefined || (!isBlankLine(text) && !parseJson(text).ok)) {
        if (!this.verifier.tornTail(`${this.label}: line ${this.lineNumber + 1}`, last.length))
          this.settled = true;
        return;
      }
      this.line(last);
    }
    if (this.settled) return;
    if (this.heldFirst) this.judgeAlone(this.heldFirst.text);
    else if (this.mode === 'document') this.document();
    else if (this.mode === 'array' && this.arrayState !== 'closed')
      this.halt(`${this.label}: the receipts array is not closed`);
  }

  private halt(message: string): void {
    this.settled = true;
    this.verifier.halt({ class: 'malformed', message });
  }

  private splitLines(chunk: Uint8Array): void {
    let start = 0;
    while (!this.settled) {
      if (this.mode === 'document') return this.collectDocument(chunk.subarray(start));
      const end = chunk.indexOf(NEWLINE, start);
      if (end < 0) {
        if (!this.pending.add(chunk.subarray(start))) {
          this.halt(
            `${this.label}: line ${this.lineNumber + 1}: longer than ${MAX_LINE_BYTES} bytes`,
          );
        }
        return;
      }
      const piece = chunk.subarray(start, end);
      start = end + 1;
      this.line(this.pending.length > 0 ? (this.pending.add(piece), this.pending.take()) : piece);
    }
  }

  private line(bytes: Uint8Array): void {
    this.lineNumber++;
    const where = `${this.label}: line ${this.lineNumber}`;
    const body = bytes[bytes.length - 1] === CR ? bytes.subarray(0, -1) : bytes;
    if (body.length > MAX_LINE_BYTES)
      return this.halt(`${where}: longer than ${MAX_LINE_BYTES} bytes`);
    const text = decodeUtf8(body);
    if (text === undefined) return this.halt(`${where}: not valid UTF-8`);
    if (isBlankLine(text)) return;
    if (this.auto && !this.sawContent) {
      const parsed = parseJson(text);
      // A first line that is not JSON on its own may open one pretty-printed receipt.
      if (!parsed.ok) {
        this.firstLineError = `${where}: ${parsed.error}`;
        this.mode = 'document';
        return this.collectDocument(concatBytes(bytes, new Uint8Array([NEWLINE])));
      }
      this.sawContent = true;
      const root = parsed.doc.root;
      if (root.kind === 'object' && root.members.has('action_record')) {
        this.heldFirst = { text, where };
        return;
      }
    }
    const held = this.heldFirst;
    if (held) {
      this.heldFirst = undefined;
      if (!this.verifier.line(held.text, held.where)) {
        this.settled = true;
        return;
      }
    }
    if (!this.verifier.line(text, where)) this.settled = true;
  }

  private collectDocument(bytes: Uint8Array): void {
    if (!this.pending.add(bytes)) this.halt(this.firstLineError ?? `${this.label}: too large`);
  }

  private document(): void {
    this.judgeAlone(decodeUtf8(this.pending.take()));
  }

  /** The whole input is one receipt document: Pipelock judges it on its own, not as a chain. */
  private judgeAlone(text: string | undefined): void {
    const parsed = text === undefined ? undefined : parseJson(text);
    const root = parsed?.ok ? parsed.doc.root : undefined;
    if (!parsed?.ok || root?.kind !== 'object' || !root.members.has('action_record')) {
      return this.halt(this.firstLineError ?? `${this.label}: not a receipt`);
    }
    const receipt = decodeReceipt(parsed.doc, root);
    if (!receipt.ok) return this.halt(`${this.label}: ${receipt.failure.message}`);
    if (!this.verifier.singleReceipt(receipt.value)) this.settled = true;
  }

  // Cuts a top-level JSON array into its elements without parsing it whole; each element must be
  // a receipt object and is parsed on its own.
  private scanArray(chunk: Uint8Array): void {
    let start = this.arrayState === 'value' ? 0 : -1;
    for (let i = 0; i < chunk.length && !this.settled; i++) {
      const byte = chunk[i] ?? 0;
      if (this.arrayState === 'value') {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (byte === BACKSLASH) this.escaped = true;
          else if (byte === QUOTE) this.inString = false;
        } else if (byte === QUOTE) this.inString = true;
        else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) this.depth++;
        else if ((byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) && --this.depth === 0) {
          this.element(chunk.subarray(start, i + 1));
          this.arrayState = 'after';
        }
        continue;
      }
      if (isSpace(byte)) continue;
      const state = this.arrayState;
      if (state === 'open' && byte === OPEN_ARRAY) this.arrayState = 'first';
      else if ((state === 'first' || state === 'next') && byte === OPEN_OBJECT) {
        this.arrayState = 'value';
        this.depth = 1;
        start = i;
      } else if ((state === 'first' || state === 'after') && byte === CLOSE_ARRAY)
        this.arrayState = 'closed';
      else if (state === 'after' && byte === COMMA) this.arrayState = 'next';
      else if (state === 'closed') this.halt(`${this.label}: data after the receipts array`);
      else this.halt(`${this.label}: receipt ${this.index}: expected a receipt object`);
    }
    if (this.arrayState === 'value' && !this.settled && !this.pending.add(chunk.subarray(start)))
      this.halt(`${this.label}: receipt ${this.index}: longer than ${MAX_LINE_BYTES} bytes`);
  }

  private element(tail: Uint8Array): void {
    const where = `${this.label}: receipt ${this.index++}`;
    const bytes = this.pending.length > 0 ? (this.pending.add(tail), this.pending.take()) : tail;
    if (bytes.length > MAX_LINE_BYTES)
      return this.halt(`${where}: longer than ${MAX_LINE_BYTES} bytes`);
    const text = decodeUtf8(bytes);
    if (text === undefined) return this.halt(`${where}: not valid UTF-8`);
    const parsed = parseJson(text);
    if (!parsed.ok) return this.halt(`${where}: ${parsed.error}`);
    const receipt = decodeReceipt(parsed.doc, parsed.doc.root);
    if (!receipt.ok) return this.halt(`${where}: ${receipt.failure.message}`);
    if (!this.verifier.receipt(receipt.value)) this.settled = true;
  }
}
