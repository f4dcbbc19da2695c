// What the engine's decision log says that the evidence cannot: requests it refused because
// their receipts could not be written (a full disk, the evidence at its file budget). Pure.

export interface UnrecordedRefusals {
  readonly count: number;
  /** Why the first one could not be recorded. */
  readonly reason: string;
}

/** Counts the log's `evidence_error` events; lines that are not JSON events are skipped. */
export function unrecordedRefusals(log: string): UnrecordedRefusals | undefined {
  let count = 0;
  let reason = '';
  for (const line of log.split('\n')) {
    if (!line.includes('"evidence_error"')) continue;
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      continue;
    }
    const { event: kind, message } = (event ?? {}) as { event?: unknown; message?: unknown };
    if (kind !== 'evidence_error') continue;
    if (count++ === 0) reason = typeof message === 'string' ? message : '';
  }
  return count === 0 ? undefined : { count, reason };
}
