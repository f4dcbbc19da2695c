// The engine's log is kept up to a size: an agent that sends requests without end (or keeps
// sending after the evidence is full, each refusal a log line) must not fill the runner's disk.
// Past the budget, whole lines are dropped and counted, the requests refused without a receipt
// among them too, so the Audit Packet can still say how many there were. Pure: chunks in,
// bytes to write out.
import { EngineLogTally } from '../packet/engine-log.js';

export const ENGINE_LOG_MAX_BYTES = 64 * 1024 * 1024;
/**
 * The most a kept log can hold: its budget, then the log_cut and log_dropped lines (the reason
 * the latter quotes comes from a line of at most MAX_HELD_LINE bytes).
 */
export const ENGINE_LOG_MAX_FILE_BYTES = ENGINE_LOG_MAX_BYTES + 1024 * 1024;

/** A dropped line longer than this is only counted: a refusal line is far shorter. */
const MAX_HELD_LINE = 64 * 1024;
const NEWLINE = 0x0a;

/** Keeps whole lines only, so where the log stops does not depend on how its writes were cut. */
export class LogBudget {
  private kept = 0;
  /** The start of a line whose end has not come yet. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private cut = false;
  private droppedLines = 0;
  private droppedBytes = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private readonly dropped = new EngineLogTally();

  constructor(private readonly maxBytes = ENGINE_LOG_MAX_BYTES) {}

  /** What of this chunk goes into the log now (empty once the budget is spent). */
  take(chunk: Buffer): Buffer {
    if (this.cut) {
      this.drop(chunk);
      return Buffer.alloc(0);
    }
    const lastEnd = chunk.lastIndexOf(NEWLINE);
    if (lastEnd < 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      return this.kept + this.pendingBytes <= this.maxBytes ? Buffer.alloc(0) : this.stop();
    }
    const lines = Buffer.concat([...this.pending, chunk.subarray(0, lastEnd + 1)]);
    this.pending = [chunk.subarray(lastEnd + 1)];
    this.pendingBytes = chunk.length - lastEnd - 1;
    if (this.kept + lines.length > this.maxBytes) {
      // Keep the lines that fit; the rest, and the line under way, are dropped.
      const fit = lines.subarray(0, this.maxBytes - this.kept).lastIndexOf(NEWLINE) + 1;
      this.kept += fit;
      this.pending.unshift(lines.subarray(fit));
      return Buffer.concat([lines.subarray(0, fit), this.stop()]);
    }
    this.kept += lines.length;
    if (this.kept + this.pendingBytes > this.maxBytes) return Buffer.concat([lines, this.stop()]);
    return lines;
  }

  /**
   * The end of the log: an unfinished last line as it was, or, when lines were dropped, a
   * last line saying how many and what they held.
   */
  finish(): Buffer {
    if (!this.cut) {
      const rest = Buffer.concat(this.pending);
      this.pending = [];
      return rest;
    }
    if (this.heldBytes > 0) this.endHeldLine();
    const unrecorded = this.dropped.result().unrecorded;
    return Buffer.from(
      `${JSON.stringify({
        event: 'log_dropped',
        lines: this.droppedLines,
        bytes: this.droppedBytes,
        unrecorded: unrecorded?.count ?? 0,
        unrecorded_reason: unrecorded?.reason ?? '',
      })}\n`,
    );
  }

  /** Spends the budget: what is under way is dropped, and the log says where it stopped. */
  private stop(): Buffer {
    this.cut = true;
    for (const part of this.pending) this.drop(part);
    this.pending = [];
    return Buffer.from(
      `${JSON.stringify({
        event: 'log_cut',
        max_bytes: this.maxBytes,
        message: 'the engine log reached its size limit; later lines are counted, not kept',
      })}\n`,
    );
  }

  private drop(bytes: Buffer): void {
    this.droppedBytes += bytes.length;
    let start = 0;
    for (let end = bytes.indexOf(NEWLINE); end >= 0; end = bytes.indexOf(NEWLINE, start)) {
      this.hold(bytes.subarray(start, end));
      this.endHeldLine();
      start = end + 1;
    }
    this.hold(bytes.subarray(start));
  }

  private hold(part: Buffer): void {
    if (part.length === 0) return;
    const room = MAX_HELD_LINE - this.heldBytes;
    if (room > 0) this.held.push(part.subarray(0, room));
    this.heldBytes += part.length;
  }

  private endHeldLine(): void {
    this.droppedLines++;
    if (this.heldBytes <= MAX_HELD_LINE) this.dropped.add(Buffer.concat(this.held).toString());
    this.held = [];
    this.heldBytes = 0;
  }
}
