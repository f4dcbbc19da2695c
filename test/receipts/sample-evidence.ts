// Evidence as the engine writes it, for tests and the verify benchmark: a session open, N
// decisions, the session close, the transcript_root and a signed checkpoint, with checkpoints
// every 1,000 entries as Pipelock's recorder does.
import type { BuiltReceipt, ReceiptFields } from '../../src/receipts/builder.js';
import { ReceiptChainBuilder } from '../../src/receipts/builder.js';
import { toHex, utf8 } from '../../src/receipts/bytes.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { RecorderWriter } from '../../src/receipts/recorder-writer.js';

const backend = createNodeBackend();
const CHECKPOINT_EVERY = 1000;
const START = Date.parse('2026-11-26T22:00:00Z');

export const SAMPLE_SEED = backend.sha256(utf8('pipelock-egress sample evidence key'));
export const SAMPLE_KEY = toHex(backend.ed25519PublicKey(SAMPLE_SEED));
/** A policy the sample receipts were decided under (they carry its hash). */
export const SAMPLE_POLICY = utf8(
  'version: "1.0"\nmode: enforce\negress:\n  - destination: "api0.example.test"\n    methods: ["GET"]\ndefault_deny: true\n',
);
export const SAMPLE_POLICY_HASH = toHex(backend.sha256(SAMPLE_POLICY));

function at(ms: number): string {
  return new Date(START + ms).toISOString();
}

export function sampleDecision(i: number): ReceiptFields {
  const blocked = i % 5 === 4;
  return {
    action_id: `act-${i}`,
    action_type: i % 3 === 0 ? 'write' : 'read',
    timestamp: at(i * 7),
    principal: 'local',
    actor: 'agent <ci>',
    delegation_chain: null,
    target: `https://api${i % 7}.example.test/v1/items?page=${i}&sort=asc`,
    side_effect_class: i % 3 === 0 ? 'external_write' : 'external_read',
    reversibility: i % 3 === 0 ? 'compensatable' : 'full',
    policy_hash: SAMPLE_POLICY_HASH,
    verdict: blocked ? 'block' : 'allow',
    transport: 'forward',
    method: i % 3 === 0 ? 'POST' : 'GET',
    ...(blocked ? { layer: 'egress', pattern: 'host not in egress rules > default deny' } : {}),
    request_id: `req-${i}`,
  };
}

function control(target: string, i: number): ReceiptFields {
  return {
    action_id: `control-${i}`,
    action_type: 'unclassified',
    timestamp: at(i * 7),
    principal: 'local',
    actor: 'pipelock',
    delegation_chain: null,
    target,
    side_effect_class: 'none',
    reversibility: 'unknown',
    policy_hash: SAMPLE_POLICY_HASH,
    verdict: 'allow',
    transport: 'receipt_session',
    layer: 'session_control',
  };
}

export interface SampleLine {
  readonly text: string;
  /** The receipt this line carries, if it is an action_receipt entry. */
  readonly receipt?: BuiltReceipt;
}

/** The evidence lines (each with its "\n") of a session with `decisions` decision receipts. */
/** `decide` gives the fields of decision i (1-based). */
export function* sampleEvidence(
  decisions: number,
  seed = SAMPLE_SEED,
  decide: (i: number) => ReceiptFields = sampleDecision,
  /** The session open's posture_capsule_sha256, as `run` binds its run capsule. */
  runCapsule?: string,
): Generator<SampleLine> {
  const builder = new ReceiptChainBuilder(backend, seed);
  const recorder = new RecorderWriter(backend, 'proxy', seed);
  let entries = 0;
  let first: BuiltReceipt | undefined;
  let last: BuiltReceipt | undefined;
  function* entry(receipt: BuiltReceipt): Generator<SampleLine> {
    first ??= receipt;
    last = receipt;
    yield {
      text: recorder.appendReceipt(receipt, receipt.receipt.action_record.timestamp),
      receipt,
    };
    if (++entries % CHECKPOINT_EVERY === CHECKPOINT_EVERY - 1) {
      entries++;
      yield { text: recorder.appendCheckpoint(receipt.receipt.action_record.timestamp) };
    }
  }
  yield* entry(
    builder.openSession(control('pipelock://session/open', 0), {
      run_nonce: '4120828d9be9b0f9cfb02359a1d29dad',
      open_nonce: 'open-1',
      recorder_session: 'proxy',
      policy_hash: SAMPLE_POLICY_HASH,
      signer_key_epoch: '1',
      heartbeat_seconds: 30n,
      ...(runCapsule === undefined ? {} : { posture_capsule_sha256: runCapsule }),
    }),
  );
  for (let i = 1; i <= decisions; i++) yield* entry(builder.append(decide(i)));
  yield* entry(
    builder.close(control('pipelock://session/close', decisions + 1), {
      close_reason: 'graceful_shutdown',
    }),
  );
  const end = at((decisions + 2) * 7);
  const firstRecord = first?.receipt.action_record;
  const lastRecord = last?.receipt.action_record;
  yield {
    text: recorder.appendTranscriptRoot(end, {
      finalSeq: lastRecord?.chain_seq ?? 0n,
      rootHash: builder.head,
      receiptCount: decisions + 2,
      startTime: firstRecord?.timestamp ?? '',
      endTime: lastRecord?.timestamp ?? '',
    }),
  };
  yield { text: recorder.appendCheckpoint(end) };
}
