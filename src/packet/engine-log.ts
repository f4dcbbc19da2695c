// What the engine's decision log says that the evidence cannot: requests it refused because
// their receipts could not be written (a full disk, the evidence at its file budget). Pure:
// lines are added one at a time (the log of a long run is read as a stream).

export interface UnrecordedRefusals {
  readonly count: number;
  /** Why the first one could not be recorded. */
  readonly reason: string;
}

/** Counts the log's `evidence_error` events; lines that are not JSON events are skipped. */
export class UnrecordedTally {
  private count = 0;
  private reason = '';

  add(line: string): void {
    if (!line.includes('"evidence_error"')) return;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    const { event: kind, message } = (event ?? {}) as { event?: unknown; message?: unknown };
    if (kind !== 'evidence_error') return;
    if (this.count++ === 0) this.reason = typeof message === 'string' ? message : '';
  }

  result(): UnrecordedRefusals | undefined {
    return this.count === 0 ? undefined : { count: this.count, reason: this.reason };
  }
}
