// WebSocket messages on their way from one side of a relayed pair to the other: in order,
// each once judged, with what waits (to be judged, or to be written to a reader that does not
// keep up) bounded per connection and across all of them.

import { setImmediate as nextTurn } from 'node:timers/promises';
import type WebSocket from 'ws';
import type { RawData } from 'ws';

/** Bytes one side may have waiting (payloads and their overhead) before its sender is paused. */
export const QUEUED_BYTES_HIGH = 4 * 1024 * 1024;

/**
 * What a waiting message costs on top of its payload (its frame, its place in the queue, the
 * promise that judges it; a few hundred bytes measured): empty messages are not free, and
 * counted as such they would never pause their sender.
 */
export const MESSAGE_OVERHEAD_BYTES = 1024;

/** What all relays of an engine together may hold waiting (see MessageBudget). */
export const MESSAGES_HELD_BYTES = 64 * 1024 * 1024;

/**
 * Bytes all relays together hold waiting: past it every sender that adds more is paused until
 * there is room again (one agent opening hundreds of WebSockets to an origin that does not
 * read would otherwise have the engine hold gigabytes).
 */
export class MessageBudget {
  private held = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly limit: number) {}

  get full(): boolean {
    return this.held > this.limit;
  }

  take(bytes: number): void {
    this.held += bytes;
  }

  give(bytes: number): void {
    this.held -= bytes;
    // Called once per message relayed: a flood of tiny ones should not copy an empty list each.
    if (this.full || this.waiting.size === 0) return;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const resume of waiting) resume();
  }

  /** Calls `resume` once the budget has room. */
  whenRoom(resume: () => void): void {
    this.waiting.add(resume);
  }
}

export interface Forwarder {
  readonly send: (data: RawData, isBinary: boolean) => void;
  /** Settles once every message received so far has been judged and handed on. */
  readonly settled: () => Promise<void>;
}

/** The sides of a pair as the forwarder uses them (a ws WebSocket). */
export type MessageSource = Pick<WebSocket, 'pause' | 'resume' | 'isPaused'>;
export type MessageDestination = Pick<WebSocket, 'send'>;

/**
 * Sends `source`'s messages on to `destination` in order, each once `judge` passes it (it
 * never throws), pausing `source` while more than QUEUED_BYTES_HIGH of them wait or the
 * budget is spent: a scan that takes its time, or a reader that stops reading, would
 * otherwise have the engine hold everything the other side sends.
 */
export function forwarder(
  source: MessageSource,
  destination: MessageDestination,
  budget: MessageBudget,
  judge: (data: RawData, isBinary: boolean) => Promise<boolean>,
): Forwarder {
  let queued = 0;
  let order = Promise.resolve();
  const resumeWhenRoom = () => {
    if (queued > QUEUED_BYTES_HIGH || !source.isPaused) return;
    if (budget.full) budget.whenRoom(resumeWhenRoom);
    else source.resume();
  };
  const release = (bytes: number) => {
    queued -= bytes;
    budget.give(bytes);
    resumeWhenRoom();
  };
  return {
    send(data, isBinary) {
      const bytes = byteLength(data) + MESSAGE_OVERHEAD_BYTES;
      queued += bytes;
      budget.take(bytes);
      if (queued > QUEUED_BYTES_HIGH || budget.full) {
        source.pause();
        resumeWhenRoom();
      }
      // One message judged per turn of the event loop: those read in one go (ten thousand
      // empty ones fit in 60 KB) or queued behind a scan on a thread, judged back to back in
      // promise callbacks, held the loop for tens of seconds, every other connection, timer
      // and the health check waiting.
      order = order
        .then(() => nextTurn())
        .then(() => judge(data, isBinary))
        .then((pass) => {
          if (pass) destination.send(data, { binary: isBinary }, () => release(bytes));
          else release(bytes);
        });
    },
    settled: () => order,
  };
}

function byteLength(data: RawData): number {
  return Array.isArray(data)
    ? data.reduce((sum, part) => sum + part.length, 0)
    : (data as ArrayBuffer).byteLength;
}
