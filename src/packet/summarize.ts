// What a chain of receipts says, counted: totals per verdict, transports, blocks per layer,
// the destinations touched with their allowed and blocked requests, and every block. Pure.
import type { Receipt } from '../receipts/index.js';

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
}

const SESSION_TRANSPORT = 'receipt_session';

/** The destination a target names: host[:port] of a URL, or the CONNECT authority itself. */
export function destinationOf(target: string): string {
  try {
    const url = new URL(target);
    if (
      url.protocol === 'http:' ||
      url.protocol === 'https:' ||
      url.protocol === 'ws:' ||
      url.protocol === 'wss:'
    ) {
      return url.host;
    }
  } catch {
    // not a URL: an authority (host:port) as CONNECT names it
  }
  return target;
}

/** The host alone, for `domains_touched`. */
export function hostOf(destination: string): string {
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(destination);
  if (bracketed) return bracketed[1] ?? destination;
  return destination.replace(/:[0-9]+$/, '');
}

export function summarizeChain(receipts: readonly Receipt[]): ChainSummary {
  const totals = Object.fromEntries(VERDICT_TOTALS.map((v) => [v, 0])) as Record<
    VerdictTotal,
    number
  >;
  const transports: Record<string, number> = {};
  const layers: Record<string, number> = {};
  const domains = new Set<string>();
  const policyHashes = new Set<string>();
  const destinations = new Map<string, DestinationCounts>();
  const refused: BlockedRequest[] = [];
  for (const { action_record: record } of receipts) {
    const verdict = (VERDICT_TOTALS as readonly string[]).includes(record.verdict)
      ? (record.verdict as VerdictTotal)
      : 'other';
    totals[verdict]++;
    transports[record.transport] = (transports[record.transport] ?? 0) + 1;
    policyHashes.add(record.policy_hash);
    if (record.verdict === 'block')
      layers[record.layer ?? ''] = (layers[record.layer ?? ''] ?? 0) + 1;
    // Session control and tunnel outcomes are not requests.
    if (record.transport === SESSION_TRANSPORT || record.decision_phase === 'outcome') continue;
    const destination = destinationOf(record.target);
    domains.add(hostOf(destination));
    const counts = destinations.get(destination) ?? {
      destination,
      allowed: 0,
      blocked: 0,
      warned: 0,
      methods: new Set<string>(),
    };
    destinations.set(destination, counts);
    if (record.method !== undefined && record.method !== '') counts.methods.add(record.method);
    if (record.verdict === 'allow') counts.allowed++;
    else if (record.verdict === 'warn') counts.warned++;
    else counts.blocked++;
    if (record.verdict !== 'allow') {
      refused.push({
        seq: record.chain_seq,
        method: record.method ?? '',
        target: record.target,
        layer: record.layer ?? '',
        reason: record.pattern ?? '',
        verdict: record.verdict,
      });
    }
  }
  return {
    receiptCount: receipts.length,
    totals,
    transports,
    layers,
    domains: [...domains].sort(),
    destinations: [...destinations.values()].sort((a, b) =>
      a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0,
    ),
    refused,
    policyHashes: [...policyHashes].sort(),
  };
}
