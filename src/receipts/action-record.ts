// The ActionReceipt v1 `action_record` and its nested objects: field order, required fields and
// types of Pipelock's frozen v1 signing projection (spec §3.2–§3.4), and its canonical bytes.
import type { FieldKind, FieldSchema, GoStruct, StructSchema } from './go-struct.js';
import { encodeStruct, INT64, UINT64 } from './go-struct.js';

export const ACTION_TYPES = [
  'read',
  'derive',
  'write',
  'delegate',
  'authorize',
  'spend',
  'commit',
  'actuate',
  'unclassified',
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export interface TaintSourceRef {
  readonly url: string;
  readonly kind: string;
  readonly level: number;
  readonly timestamp: string;
  readonly receipt_id?: string;
  readonly match_reason?: string;
}

export interface RedactionSummary {
  readonly profile?: string;
  readonly provider?: string;
  readonly parser?: string;
  readonly total_redactions?: bigint;
  readonly by_class?: Readonly<Record<string, bigint>>;
  readonly cache_boundary_kept?: boolean;
}

export interface ShieldSummary {
  readonly pipeline?: string;
  readonly total_rewrites?: bigint;
  readonly extension_probes?: bigint;
  readonly tracking_beacons?: bigint;
  readonly agent_traps?: bigint;
  readonly fingerprint_shim_injected?: boolean;
  readonly svg_foreign_objects?: bigint;
  readonly svg_event_handlers?: bigint;
  readonly svg_external_references?: bigint;
  readonly svg_hidden_text?: bigint;
  readonly svg_animation_injections?: bigint;
  readonly body_bytes?: bigint;
  readonly scanned_bytes?: bigint;
  readonly partial?: boolean;
  readonly adaptive_signals_recorded?: bigint;
  readonly adaptive_signal_max_per_body?: bigint;
}

export interface KeyTransition {
  readonly prior_signer_key: string;
  readonly prior_chain_seq: bigint;
  readonly prior_chain_hash: string;
}

export interface SessionOpen {
  readonly run_nonce: string;
  readonly open_nonce: string;
  readonly recorder_session: string;
  readonly policy_hash: string;
  readonly signer_key_epoch: string;
  readonly heartbeat_seconds: bigint;
  readonly chain_open_seq: bigint;
  readonly prior_chain_head?: string;
  readonly prior_chain_seq?: bigint;
  readonly genesis_hash?: string;
  readonly genesis_anchor_head?: string;
  readonly genesis_anchor_log?: string;
  readonly posture_capsule_sha256?: string;
  readonly posture_signer_key_id?: string;
  readonly containment_nonce?: string;
  readonly contained_uid?: string;
}

export interface SessionHeartbeat {
  readonly run_nonce: string;
  readonly open_nonce: string;
  readonly beat: bigint;
  readonly chain_head: string;
  readonly chain_seq_head: bigint;
  readonly heartbeat_time: string;
  readonly fsync_errors_gated: bigint;
  readonly durability_blocks: bigint;
}

export interface SessionClose {
  readonly run_nonce: string;
  readonly open_nonce: string;
  readonly final_seq: bigint;
  readonly root_hash: string;
  readonly receipt_count: bigint;
  readonly close_reason: string;
  readonly fsync_errors_gated: bigint;
  readonly durability_blocks: bigint;
}

export interface SessionControl {
  readonly kind: string;
  readonly open?: SessionOpen;
  readonly heartbeat?: SessionHeartbeat;
  readonly close?: SessionClose;
}

/**
 * A decoded action record. Absent optional fields are left out; `timestamp` holds Go's RFC3339Nano
 * spelling. Integers that are uint64/int64 in Go are bigints.
 */
export interface ActionRecord {
  readonly version: number;
  readonly action_id: string;
  readonly parent_action_id?: string;
  readonly action_type: string;
  readonly timestamp: string;
  readonly principal: string;
  readonly actor: string;
  /** `null` (Go nil) and `[]` are different bytes. */
  readonly delegation_chain?: readonly string[] | null;
  readonly target: string;
  readonly intent?: string;
  readonly data_classes_in?: readonly string[];
  readonly data_classes_out?: readonly string[];
  readonly side_effect_class: string;
  readonly reversibility: string;
  readonly policy_hash: string;
  readonly verdict: string;
  readonly decision_phase?: string;
  readonly defer_id?: string;
  readonly resolution_policy?: string;
  readonly resolution_source?: string;
  readonly session_id?: string;
  readonly session_id_original?: string;
  readonly session_taint_level?: string;
  readonly session_contaminated?: boolean;
  readonly recent_taint_sources?: readonly TaintSourceRef[];
  readonly session_task_id?: string;
  readonly session_task_label?: string;
  readonly authority_kind?: string;
  readonly taint_decision?: string;
  readonly taint_decision_reason?: string;
  readonly task_override_applied?: boolean;
  readonly contract_winning_source?: string;
  readonly contract_live_verdict?: string;
  readonly contract_policy_sources?: readonly string[];
  readonly contract_rule_id?: string;
  readonly active_manifest_hash?: string;
  readonly contract_hash?: string;
  readonly contract_selector_id?: string;
  readonly contract_generation?: bigint;
  readonly transport: string;
  readonly method?: string;
  readonly layer?: string;
  readonly pattern?: string;
  readonly severity?: string;
  readonly redaction?: RedactionSummary;
  readonly shield?: ShieldSummary;
  readonly request_id?: string;
  readonly chain_prev_hash: string;
  readonly chain_seq: bigint;
  readonly run_nonce?: string;
  readonly key_transition?: KeyTransition;
  readonly session_control?: SessionControl;
  readonly venue?: string;
  readonly jurisdiction?: string;
  readonly rulebook_id?: string;
  readonly remedy_class?: string;
  readonly contestation_window?: string;
  readonly precedent_refs?: readonly string[];
}

const STRING: FieldKind = { type: 'string' };
const BOOL: FieldKind = { type: 'bool' };
const TIME: FieldKind = { type: 'time' };
const STRINGS: FieldKind = { type: 'strings' };
const VERSION: FieldKind = {
  type: 'smallint',
  min: -(2 ** 53 - 1),
  max: 2 ** 53 - 1,
  goType: 'int',
};

// Compact field lists: `name` = omitempty, `name!` = always written.
function fields(kind: FieldKind, ...names: string[]): FieldSchema[] {
  return names.map((name) => ({
    key: name.replace('!', ''),
    kind,
    required: name.endsWith('!'),
  }));
}
function field(name: string, kind: FieldKind): FieldSchema {
  return fields(kind, name)[0] as FieldSchema;
}

const TAINT_SOURCE: StructSchema = {
  fields: [
    ...fields(STRING, 'url!', 'kind!'),
    field('level!', { type: 'smallint', min: 0, max: 255, goType: 'uint8' }),
    field('timestamp!', TIME),
    ...fields(STRING, 'receipt_id', 'match_reason'),
  ],
};

const REDACTION: StructSchema = {
  fields: [
    ...fields(STRING, 'profile', 'provider', 'parser'),
    field('total_redactions', INT64),
    field('by_class', { type: 'intMap' }),
    field('cache_boundary_kept', BOOL),
  ],
};

const SHIELD: StructSchema = {
  fields: [
    field('pipeline', STRING),
    ...fields(INT64, 'total_rewrites', 'extension_probes', 'tracking_beacons', 'agent_traps'),
    field('fingerprint_shim_injected', BOOL),
    ...fields(
      INT64,
      'svg_foreign_objects',
      'svg_event_handlers',
      'svg_external_references',
      'svg_hidden_text',
      'svg_animation_injections',
      'body_bytes',
      'scanned_bytes',
    ),
    field('partial', BOOL),
    ...fields(INT64, 'adaptive_signals_recorded', 'adaptive_signal_max_per_body'),
  ],
};

const KEY_TRANSITION: StructSchema = {
  fields: [
    field('prior_signer_key!', STRING),
    field('prior_chain_seq!', UINT64),
    field('prior_chain_hash!', STRING),
  ],
};

const SESSION_OPEN: StructSchema = {
  fields: [
    ...fields(
      STRING,
      'run_nonce!',
      'open_nonce!',
      'recorder_session!',
      'policy_hash!',
      'signer_key_epoch!',
    ),
    field('heartbeat_seconds!', INT64),
    field('chain_open_seq!', UINT64),
    field('prior_chain_head', STRING),
    field('prior_chain_seq', UINT64),
    ...fields(
      STRING,
      'genesis_hash',
      'genesis_anchor_head',
      'genesis_anchor_log',
      'posture_capsule_sha256',
      'posture_signer_key_id',
      'containment_nonce',
      'contained_uid',
    ),
  ],
};

const SESSION_HEARTBEAT: StructSchema = {
  fields: [
    ...fields(STRING, 'run_nonce!', 'open_nonce!'),
    field('beat!', UINT64),
    field('chain_head!', STRING),
    field('chain_seq_head!', UINT64),
    field('heartbeat_time!', STRING),
    ...fields(UINT64, 'fsync_errors_gated!', 'durability_blocks!'),
  ],
};

const SESSION_CLOSE: StructSchema = {
  fields: [
    ...fields(STRING, 'run_nonce!', 'open_nonce!'),
    field('final_seq!', UINT64),
    field('root_hash!', STRING),
    field('receipt_count!', UINT64),
    field('close_reason!', STRING),
    ...fields(UINT64, 'fsync_errors_gated!', 'durability_blocks!'),
  ],
};

const SESSION_CONTROL: StructSchema = {
  fields: [
    field('kind!', STRING),
    field('open', { type: 'struct', schema: SESSION_OPEN }),
    field('heartbeat', { type: 'struct', schema: SESSION_HEARTBEAT }),
    field('close', { type: 'struct', schema: SESSION_CLOSE }),
  ],
};

export const ACTION_RECORD_SCHEMA: StructSchema = {
  fields: [
    field('version!', VERSION),
    field('action_id!', STRING),
    field('parent_action_id', STRING),
    field('action_type!', STRING),
    field('timestamp!', TIME),
    ...fields(STRING, 'principal!', 'actor!'),
    field('delegation_chain!', STRINGS),
    field('target!', STRING),
    field('intent', STRING),
    ...fields(STRINGS, 'data_classes_in', 'data_classes_out'),
    ...fields(
      STRING,
      'side_effect_class!',
      'reversibility!',
      'policy_hash!',
      'verdict!',
      'decision_phase',
      'defer_id',
      'resolution_policy',
      'resolution_source',
      'session_id',
      'session_id_original',
      'session_taint_level',
    ),
    field('session_contaminated', BOOL),
    field('recent_taint_sources', { type: 'structs', schema: TAINT_SOURCE }),
    ...fields(
      STRING,
      'session_task_id',
      'session_task_label',
      'authority_kind',
      'taint_decision',
      'taint_decision_reason',
    ),
    field('task_override_applied', BOOL),
    ...fields(STRING, 'contract_winning_source', 'contract_live_verdict'),
    field('contract_policy_sources', STRINGS),
    ...fields(
      STRING,
      'contract_rule_id',
      'active_manifest_hash',
      'contract_hash',
      'contract_selector_id',
    ),
    field('contract_generation', UINT64),
    ...fields(STRING, 'transport!', 'method', 'layer', 'pattern', 'severity'),
    field('redaction', { type: 'struct', schema: REDACTION }),
    field('shield', { type: 'struct', schema: SHIELD }),
    ...fields(STRING, 'request_id', 'chain_prev_hash!'),
    field('chain_seq!', UINT64),
    field('run_nonce', STRING),
    field('key_transition', { type: 'struct', schema: KEY_TRANSITION }),
    field('session_control', { type: 'struct', schema: SESSION_CONTROL }),
    ...fields(
      STRING,
      'venue',
      'jurisdiction',
      'rulebook_id',
      'remedy_class',
      'contestation_window',
    ),
    field('precedent_refs', STRINGS),
  ],
};

/** The canonical bytes (as a string) that Pipelock hashes and signs. */
export function canonicalActionRecord(record: ActionRecord): string {
  return encodeStruct(record as unknown as GoStruct, ACTION_RECORD_SCHEMA);
}
