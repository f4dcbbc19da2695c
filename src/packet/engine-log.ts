// What the engine's decision log says that the evidence cannot: requests it refused because
// their receipts could not be written (a full disk, the evidence at its file budget), and
// whether the log itself was cut at its size limit. Pure: lines are added one at a time (the
// log of a long run is read as a stream).

export interface UnrecordedRefusals {
  readonly count: number;
  /** Why the first one could not be recorded. */
  readonly reason: string;
}

export interface EngineLogFacts {
  readonly unrecorded?: UnrecordedRefusals;
  /** The log reached its size limit; `droppedLines` is unknown when the run did not end normally. */
  readonly cut?: { readonly maxBytes: number; readonly droppedLines?: number };
}

/**
 * Counts the log's `evidence_error` events, and those its `log_dropped` line counted among
 * the lines it did not keep; lines that are not JSON events are skipped.
 */
export class EngineLogTally {
  private count = 0;
  private reason = '';
  private cut: EngineLogFacts['cut'];

  add(line: string): void {
    if (!line.includes('"evidence_error"') && !line.includes('"log_')) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    const event = (parsed ?? {}) as Record<string, unknown>;
    switch (event['event']) {
      case 'evidence_error':
        this.unrecorded(1, event['message']);
        break;
      case 'log_cut':
        if (typeof event['max_bytes'] === 'number') this.cut = { maxBytes: event['max_bytes'] };
        break;
      case 'log_dropped':
        if (this.cut !== undefined && typeof event['lines'] === 'number')
          this.cut = { ...this.cut, droppedLines: event['lines'] };
        if (typeof event['unrecorded'] === 'number' && event['unrecorded'] > 0)
          this.unrecorded(event['unrecorded'], event['unrecorded_reason']);
        break;
    }
  }

  result(): EngineLogFacts {
    return {
      ...(this.count === 0 ? {} : { unrecorded: { count: this.count, reason: this.reason } }),
      ...(this.cut === undefined ? {} : { cut: this.cut }),
    };
  }

  private unrecorded(count: number, reason: unknown): void {
    if (this.count === 0) this.reason = typeof reason === 'string' ? reason : '';
    this.count += count;
  }
}
