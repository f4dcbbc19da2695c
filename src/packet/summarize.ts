// What a chain of receipts says, counted: totals per verdict, transports, blocks per layer,
// the destinations touched with their allowed and blocked requests, and every block. Pure.
import type { ActionRecord, Receipt } from '../receipts/index.js';
import { PassedTrafficTally, type PassedTraffic } from './audit-rules.js';

/** Audit Packet v0 counts every receipt under exactly one of these. */
export const VERDICT_TOTALS = [
  'allow',
  'block',
  'warn',
  'ask',
  'strip',
  'forward',
  'redirect',
  'other',
] as const;
export type VerdictTotal = (typeof VERDICT_TOTALS)[number];

export interface DestinationCounts {
  readonly destination: string;
  allowed: number;
  blocked: number;
  warned: number;
  readonly methods: Set<string>;
}

export interface BlockedRequest {
  readonly seq: bigint;
  readonly method: string;
  readonly target: string;
  readonly layer: string;
  readonly reason: string;
  readonly verdict: string;
}

export interface ChainSummary {
  readonly receiptCount: number;
  readonly totals: Record<VerdictTotal, number>;
  readonly transports: Record<string, number>;
  readonly layers: Record<string, number>;
  readonly domains: string[];
  readonly destinations: DestinationCounts[];
  /** Blocks, and in audit mode the would-be blocks (verdict warn). */
  readonly refused: BlockedRequest[];
  readonly policyHashes: string[];
  /** Who the receipts of requests and their outcomes were made for (session control is the engine's). */
  readonly actors: string[];
  /** The run capsule each session open binds (`posture_capsule_sha256`; empty when none). */
  readonly runCapsules: string[];
  /** What passed, for the rules that would let an audit run through. */
  readonly passed: PassedTraffic;
}

const SESSION_TRANSPORT = 'receipt_session';

/**
 * The destination a target names: host[:port] of a URL, or the CONNECT authority itself (which
 * a URL parser would misread: `http:8080` is a host named http, not a URL).
 */
export function destinationOf(target: string): string {
  if (!/^(?:https?|wss?):\/\//i.test(target)) return target;
  try {
    return new URL(target).host;
  } catch {
    return target;
  }
}

/** The host alone, for `domains_touched`. */
export function hostOf(destination: string): string {
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(destination);
  if (bracketed) return bracketed[1] ?? destination;
  return destination.replace(/:[0-9]+$/, '');
}

/** Counts receipts one at a time, so a chain of any length can be summarised as it streams by. */
export class ChainTally {
  private count = 0;
  private readonly totals = Object.fromEntries(VERDICT_TOTALS.map((v) => [v, 0])) as Record<
    VerdictTotal,
    number
  >;
  private readonly transports: Record<string, number> = {};
  private readonly layers: Record<string, number> = {};
  private readonly domains = new Set<string>();
  private readonly policyHashes = new Set<string>();
  private readonly destinations = new Map<string, DestinationCounts>();
  private readonly refused: BlockedRequest[] = [];
  private readonly actors = new Set<string>();
  private readonly runCapsules = new Set<string>();
  private readonly passedTraffic = new PassedTrafficTally();

  add({ action_record: record }: Receipt): void {
    this.count++;
    const verdict = (VERDICT_TOTALS as readonly string[]).includes(record.verdict)
      ? (record.verdict as VerdictTotal)
      : 'other';
    this.totals[verdict]++;
    this.transports[record.transport] = (this.transports[record.transport] ?? 0) + 1;
    this.policyHashes.add(record.policy_hash);
    if (record.verdict === 'block')
      this.layers[record.layer ?? ''] = (this.layers[record.layer ?? ''] ?? 0) + 1;
    const open = record.session_control?.open;
    if (open !== undefined) this.runCapsules.add(open.posture_capsule_sha256 ?? '');
    if (record.transport === SESSION_TRANSPORT) return;
    this.actors.add(record.actor);
    this.passedTraffic.add(record);
    if (!isRequest(record)) return;
    const destination = destinationOf(record.target);
    this.domains.add(hostOf(destination));
    const counts = this.destinations.get(destination) ?? {
      destination,
      allowed: 0,
      blocked: 0,
      warned: 0,
      methods: new Set<string>(),
    };
    this.destinations.set(destination, counts);
    if (record.method !== undefined && record.method !== '') counts.methods.add(record.method);
    if (record.verdict === 'allow') counts.allowed++;
    else if (record.verdict === 'warn') counts.warned++;
    else counts.blocked++;
    if (record.verdict !== 'allow') {
      this.refused.push({
        seq: record.chain_seq,
        method: record.method ?? '',
        target: detached(record.target),
        layer: record.layer ?? '',
        reason: detached(record.pattern ?? ''),
        verdict: record.verdict,
      });
    }
  }

  summary(): ChainSummary {
    return {
      receiptCount: this.count,
      totals: { ...this.totals },
      transports: { ...this.transports },
      layers: { ...this.layers },
      domains: [...this.domains].sort(),
      destinations: [...this.destinations.values()].sort((a, b) =>
        a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0,
      ),
      refused: [...this.refused],
      policyHashes: [...this.policyHashes].sort(),
      actors: [...this.actors].sort(),
      runCapsules: [...this.runCapsules].sort(),
      passed: this.passedTraffic.passed(),
    };
  }
}

/**
 * The destinations to list, in their order: all of them, or those the agent reached first
 * (what left the boundary), then those it was refused, up to `max`.
 */
export function destinationsToList(
  all: readonly DestinationCounts[],
  max: number,
): readonly DestinationCounts[] {
  if (all.length <= max) return all;
  const reached = all.filter((d) => d.allowed > 0);
  const listed = new Set([...reached, ...all.filter((d) => d.allowed === 0)].slice(0, max));
  return all.filter((d) => listed.has(d));
}

/**
 * The text in a string of its own. A receipt's strings are pieces of the evidence text they
 * were read from, and V8 keeps all of a string alive while any piece of it is: kept for every
 * refusal, they would hold on to every evidence file read.
 */
function detached(text: string): string {
  return ` ${text}`.slice(1);
}

/** Session control and tunnel outcomes are receipts, not requests. */
export function isRequest(record: ActionRecord): boolean {
  return record.transport !== SESSION_TRANSPORT && record.decision_phase !== 'outcome';
}

export function summarizeChain(receipts: readonly Receipt[]): ChainSummary {
  const tally = new ChainTally();
  for (const receipt of receipts) tally.add(receipt);
  return tally.summary();
}
