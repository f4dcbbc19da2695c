// What the engine records about each decision, and how that maps onto a Pipelock action
// record (spec §9.3). The evidence writer behind `DecisionLog` signs and appends it.

import type { ReceiptFields } from '../receipts/index.js';

export type Transport = 'forward' | 'connect' | 'intercept' | 'websocket';

export interface DecisionEntry {
  /** Shared by the receipts of one request (decision, then outcome). */
  readonly actionId: string;
  readonly requestId: string;
  readonly transport: Transport;
  /** The HTTP method, `CONNECT`, or `WS`. */
  readonly method: string;
  /** The URL (or host:port of a tunnel), with any secret redacted. */
  readonly target: string;
  readonly verdict: 'allow' | 'block' | 'warn';
  /** The check that blocked or warned; `outcome` for the receipt written after a tunnel closes. */
  readonly layer?: string;
  /** The reason, or for outcomes `status=… bytes=… reason=…`. */
  readonly pattern?: string;
  readonly phase?: 'intent' | 'outcome';
}

/** The receipt recording how an admitted request, tunnel or WebSocket ended. */
export function outcomeOf(entry: DecisionEntry, pattern: string): DecisionEntry {
  return { ...entry, layer: 'outcome', phase: 'outcome', pattern };
}

export interface DecisionLog {
  /**
   * Resolves once the signed receipt has been handed to the evidence file in one write, so
   * a crash of the engine cannot lose it; rejects when it cannot be written (the engine
   * then refuses the request: fail closed).
   */
  append(entry: DecisionEntry): Promise<void>;
}

type Classification = Pick<ReceiptFields, 'action_type' | 'side_effect_class' | 'reversibility'>;

const READ: Classification = {
  action_type: 'read',
  side_effect_class: 'external_read',
  reversibility: 'full',
};
const CLASSIFICATION: Record<string, Classification> = {
  GET: READ,
  HEAD: READ,
  OPTIONS: READ,
  TRACE: READ,
  CONNECT: READ,
  WS: READ,
  POST: {
    action_type: 'write',
    side_effect_class: 'external_write',
    reversibility: 'compensatable',
  },
  PUT: {
    action_type: 'write',
    side_effect_class: 'external_write',
    reversibility: 'compensatable',
  },
  PATCH: {
    action_type: 'write',
    side_effect_class: 'external_write',
    reversibility: 'compensatable',
  },
  DELETE: {
    action_type: 'write',
    side_effect_class: 'external_write',
    reversibility: 'irreversible',
  },
};
const UNCLASSIFIED: Classification = {
  action_type: 'unclassified',
  side_effect_class: 'none',
  reversibility: 'unknown',
};

export interface RunContext {
  readonly actor: string;
  readonly policyHash: string;
  /** SHA-256 of what the run states about itself, bound by the session open (run-capsule.ts). */
  readonly postureCapsuleSha256?: string;
}

/** The action record fields of one decision, in Pipelock's vocabulary. */
export function receiptFields(
  entry: DecisionEntry,
  run: RunContext,
  timestamp: string,
): ReceiptFields {
  const fields: Mutable<ReceiptFields> = {
    action_id: entry.actionId,
    ...(CLASSIFICATION[entry.method] ?? UNCLASSIFIED),
    timestamp,
    principal: 'local',
    actor: run.actor,
    delegation_chain: null,
    target: entry.target,
    policy_hash: run.policyHash,
    verdict: entry.verdict,
    transport: entry.transport,
    method: entry.method,
    request_id: entry.requestId,
  };
  // Assigned rather than spread in: this runs for every request.
  if (entry.phase) fields.decision_phase = entry.phase;
  if (entry.layer) fields.layer = entry.layer;
  if (entry.pattern) fields.pattern = entry.pattern;
  return fields;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
