// EvidenceReceipt v2 (spec §8): Pipelock's JCS profile and the PureEdDSA signature over it.
// Verification only; this project emits v1 receipts.
import { fromHex, toHex, utf8 } from './bytes.js';
import type { CryptoBackend } from './crypto.js';
import type { Outcome } from './failure.js';
import { fail, goQuote } from './failure.js';
import { goString } from './go-json.js';
import { compareUtf8 } from './go-struct.js';
import type { JsonNode } from './json.js';
import { parseJson } from './json.js';
import { SIGNATURE_PREFIX } from './receipt.js';

const RECEIPT_SIGNING = 'receipt-signing';
const ACTIVATION_SIGNING = 'contract-activation-signing';

const KEY_PURPOSE_BY_PAYLOAD: Readonly<Record<string, string>> = {
  proxy_decision: RECEIPT_SIGNING,
  proxy_decision_with_spans: RECEIPT_SIGNING,
  contract_ratified: RECEIPT_SIGNING,
  contract_promote_committed: RECEIPT_SIGNING,
  contract_rollback_committed: RECEIPT_SIGNING,
  contract_demoted: RECEIPT_SIGNING,
  contract_expired: RECEIPT_SIGNING,
  contract_drift: RECEIPT_SIGNING,
  shadow_delta: RECEIPT_SIGNING,
  opportunity_missing: RECEIPT_SIGNING,
  contract_promote_intent: ACTIVATION_SIGNING,
  contract_rollback_authorized: ACTIVATION_SIGNING,
  key_rotation: ACTIVATION_SIGNING,
  contract_redaction_request: ACTIVATION_SIGNING,
};

class JcsError extends Error {}

/**
 * Pipelock's JCS: NFC-normalised keys sorted by UTF-8 bytes, NFC strings with Go escaping
 * (HTML characters escaped, unlike RFC 8785), integers only, no whitespace.
 */
export function pipelockJcs(node: JsonNode, replaceSignature = false): string {
  switch (node.kind) {
    case 'null':
      return 'null';
    case 'bool':
      return node.value ? 'true' : 'false';
    case 'number':
      if (!/^-?[0-9]+$/.test(node.text))
        throw new JcsError(`number ${node.text} is not an integer`);
      return BigInt(node.text).toString();
    case 'string':
      return goString(node.value.normalize('NFC'));
    case 'array':
      return `[${node.items.map((item) => pipelockJcs(item)).join(',')}]`;
    case 'object': {
      const members = new Map<string, string>();
      for (const [key, value] of node.members) {
        const nfc = key.normalize('NFC');
        if (members.has(nfc))
          throw new JcsError(`keys collide after NFC normalisation: ${goQuote(nfc)}`);
        members.set(
          nfc,
          replaceSignature && nfc === 'signature'
            ? '{"algorithm":"","key_purpose":"","signature":"","signer_key_id":""}'
            : pipelockJcs(value),
        );
      }
      const keys = [...members.keys()].sort(compareUtf8);
      return `{${keys.map((k) => `${goString(k)}:${members.get(k) ?? 'null'}`).join(',')}}`;
    }
  }
}

export interface EvidenceReceiptV2 {
  readonly payload_kind: string;
  readonly event_id: string;
  readonly chain_seq: bigint;
  readonly chain_prev_hash: string;
  /** Lowercase hex SHA-256 of the canonical envelope: the next v2 receipt's chain_prev_hash. */
  readonly hash: string;
}

function member(node: JsonNode, key: string): JsonNode | undefined {
  return node.kind === 'object' ? node.members.get(key) : undefined;
}

function stringMember(node: JsonNode | undefined, key: string): string | undefined {
  const value = node === undefined ? undefined : member(node, key);
  return value?.kind === 'string' ? value.value : undefined;
}

/** Verifies a v2 envelope's signature with a pinned 32-byte public key. */
export function verifyEvidenceReceiptV2(
  backend: CryptoBackend,
  text: string,
  publicKey: Uint8Array,
): Outcome<EvidenceReceiptV2> {
  const parsed = parseJson(text);
  if (!parsed.ok) return fail('malformed', `unmarshal evidence receipt: ${parsed.error}`);
  const root = parsed.doc.root;
  if (stringMember(root, 'record_type') !== 'evidence_receipt_v2') {
    return fail('malformed', 'record_type must be "evidence_receipt_v2"');
  }
  const version = member(root, 'receipt_version');
  if (version?.kind !== 'number' || version.text !== '2')
    return fail('malformed', 'receipt_version must be 2');
  const payloadKind = stringMember(root, 'payload_kind') ?? '';
  const requiredPurpose = KEY_PURPOSE_BY_PAYLOAD[payloadKind];
  if (requiredPurpose === undefined)
    return fail('malformed', `unknown payload_kind ${goQuote(payloadKind)}`);
  const signature = member(root, 'signature');
  if (stringMember(signature, 'algorithm') !== 'ed25519')
    return fail('signature', 'signature algorithm must be "ed25519"');
  if (stringMember(signature, 'key_purpose') !== requiredPurpose) {
    return fail('signature', `payload_kind ${payloadKind} requires key_purpose ${requiredPurpose}`);
  }
  const wire = stringMember(signature, 'signature') ?? '';
  if (!wire.startsWith(SIGNATURE_PREFIX))
    return fail('signature', 'invalid signature format: missing ed25519: prefix');
  const sig = fromHex(wire.slice(SIGNATURE_PREFIX.length));
  if (sig?.length !== 64) return fail('signature', 'invalid signature encoding');
  const seq = member(root, 'chain_seq');
  if (seq?.kind !== 'number' || !/^[0-9]+$/.test(seq.text))
    return fail('malformed', 'chain_seq must be an unsigned integer');
  try {
    const preimage = utf8(pipelockJcs(root, true));
    if (!backend.ed25519Verify(publicKey, preimage, sig))
      return fail('signature', 'signature verification failed');
    return {
      ok: true,
      value: {
        payload_kind: payloadKind,
        event_id: stringMember(root, 'event_id') ?? '',
        chain_seq: BigInt(seq.text),
        chain_prev_hash: stringMember(root, 'chain_prev_hash') ?? '',
        hash: toHex(backend.sha256(pipelockJcs(root))),
      },
    };
  } catch (err) {
    if (err instanceof JcsError) return fail('malformed', `canonicalisation: ${err.message}`);
    throw err;
  }
}
