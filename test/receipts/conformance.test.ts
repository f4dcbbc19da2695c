// Every entry of shared/conformance/expected.json, checked against the receipts core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex, utf8 } from '../../src/receipts/bytes.js';
import type { SessionOpen } from '../../src/receipts/action-record.js';
import {
  parseRotationEndorsement,
  verifyRotationEndorsement,
} from '../../src/receipts/endorsement.js';
import { readEvidence, verifyEvidence } from '../../src/receipts/evidence.js';
import type { FailureClass } from '../../src/receipts/failure.js';
import { verifyEvidenceReceiptV2 } from '../../src/receipts/evidence-v2.js';
import { sessionOpenGenesis } from '../../src/receipts/genesis.js';
import { goString } from '../../src/receipts/go-json.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { parseReceipt, verifyReceipt } from '../../src/receipts/receipt.js';
import { entryHash, parseEntryLine, verifyEntryChain } from '../../src/receipts/recorder.js';
import type { RecorderEntry } from '../../src/receipts/recorder.js';
import { VECTORS_DIR, vectorBytes, vectorText } from './vectors.js';

const backend = createNodeBackend();

interface Expectation {
  file: string;
  kind: string;
  keys: string[];
  endorsements: string[];
  session_id?: string;
  expect: 'valid' | 'invalid';
  error_contains?: string;
  broken_at_seq?: number;
  receipt_count?: number;
  final_seq?: number;
  root_hash?: string;
}

const expectations = JSON.parse(vectorText('expected.json')) as Expectation[];

test(`conformance vectors are present at ${VECTORS_DIR}`, () => {
  assert.ok(expectations.length > 0, 'expected.json lists no vectors');
});

// expected.json gives error texts; these are the failure classes we assign to them.
const CLASS_OF_ERROR: Readonly<Record<string, FailureClass>> = {
  'signature verification failed': 'signature',
  'chain_prev_hash mismatch': 'chain',
  'session_open genesis hash mismatch': 'genesis',
  'session_open on legacy genesis': 'genesis',
  'heartbeat chain_head': 'lifecycle',
  'session_close root_hash': 'lifecycle',
  'session_control must carry exactly one payload': 'invalid_record',
  'session_close receipt_count mismatch': 'lifecycle',
  'record observed after session_close': 'lifecycle',
  'run_nonce first receipt is not a matching session_open': 'lifecycle',
  'duplicate session_open for run_nonce': 'lifecycle',
};

function checkClass(e: Expectation, failureClass: FailureClass | undefined): void {
  if (e.expect === 'valid') return assert.equal(failureClass, undefined);
  if (e.error_contains === undefined) {
    // Unauthorised rotations: Go and Python word these differently, so expected.json has no text.
    return assert.ok(failureClass === 'untrusted_key' || failureClass === 'rotation', failureClass);
  }
  assert.equal(failureClass, CLASS_OF_ERROR[e.error_contains], 'failure class');
}

function checkVerdict(e: Expectation, valid: boolean, error: string | undefined): void {
  assert.equal(valid, e.expect === 'valid', `verdict (error: ${error ?? 'none'})`);
  if (e.error_contains !== undefined)
    assert.ok(
      error?.includes(e.error_contains),
      `error ${JSON.stringify(error)} should contain ${JSON.stringify(e.error_contains)}`,
    );
}

const checks: Record<string, (e: Expectation) => void> = {
  keys(e) {
    const doc = JSON.parse(vectorText(e.file)) as Record<string, string>;
    if (doc['signature_hex'] !== undefined) {
      const key = fromHex(doc['public_key_hex'] ?? '');
      const signature = fromHex(doc['signature_hex']);
      assert.ok(key && signature);
      assert.ok(backend.ed25519Verify(key, utf8(doc['message'] ?? ''), signature));
      return;
    }
    for (const prefix of ['', 'rotated_', 'rotated_twice_']) {
      const phrase = doc[`${prefix}seed_phrase`];
      if (phrase === undefined) continue;
      const seed = backend.sha256(utf8(phrase));
      assert.equal(toHex(seed), doc[`${prefix}seed_hex`]);
      assert.equal(toHex(backend.ed25519PublicKey(seed)), doc[`${prefix}public_key_hex`]);
    }
  },
  single(e) {
    const parsed = parseReceipt(vectorText(e.file));
    assert.ok(parsed.ok);
    const verified = verifyReceipt(backend, parsed.value, e.keys);
    checkVerdict(e, verified.ok, verified.ok ? undefined : verified.failure.message);
    checkClass(e, verified.ok ? undefined : verified.failure.class);
  },
  chain(e) {
    const evidence = readEvidence(vectorBytes(e.file), e.file);
    assert.ok(evidence.ok, evidence.ok ? '' : evidence.failure.message);
    const endorsements = e.endorsements.map((name) => {
      const parsed = parseRotationEndorsement(vectorText(name));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.failure.message);
      return parsed.value;
    });
    const report = verifyEvidence(backend, evidence.value, {
      trustedKeys: e.keys,
      endorsements,
      ...(e.session_id === undefined ? {} : { sessionId: e.session_id }),
    });
    checkVerdict(e, report.valid, report.error?.message);
    checkClass(e, report.error?.class);
    assert.equal(report.pinned, true);
    if (e.broken_at_seq !== undefined) assert.equal(report.broken_at_seq, BigInt(e.broken_at_seq));
    if (e.receipt_count !== undefined) assert.equal(report.receipt_count, e.receipt_count);
    if (e.final_seq !== undefined) assert.equal(report.final_seq, BigInt(e.final_seq));
    if (e.root_hash !== undefined) assert.equal(report.root_hash, e.root_hash);
  },
  endorsement(e) {
    const parsed = parseRotationEndorsement(vectorText(e.file));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.failure.message);
    assert.equal(parsed.value.prior_signer_key, e.keys[0]);
    const verified = verifyRotationEndorsement(backend, parsed.value);
    checkVerdict(e, verified.ok, verified.ok ? undefined : verified.failure.message);
    const altered = verifyRotationEndorsement(backend, {
      ...parsed.value,
      prior_final_seq: parsed.value.prior_final_seq + 1n,
    });
    assert.equal(altered.ok, false, 'an altered field must break the endorsement signature');
  },
  'genesis-vectors'(e) {
    const vectors = JSON.parse(vectorText(e.file)) as Array<{
      name: string;
      open: Record<string, string | number>;
      expected: string;
    }>;
    assert.equal(vectors.length, 5);
    for (const v of vectors) {
      const open = Object.fromEntries(
        Object.entries(v.open).map(([k, value]) => [
          k,
          typeof value === 'number' ? BigInt(value) : value,
        ]),
      ) as unknown as SessionOpen;
      assert.equal(sessionOpenGenesis(backend, open), v.expected, v.name);
    }
  },
  'recorder-hash'(e) {
    const doc = JSON.parse(vectorText(e.file)) as {
      hashes: Array<{ name: string; line: string; hash: string }>;
      rejects: Array<{ name: string; line: string; error: string }>;
      chains: Array<{ name: string; lines: string[]; error: string }>;
    };
    assert.equal(doc.hashes.length, 18);
    for (const h of doc.hashes) {
      const entry = parseEntryLine(h.line);
      assert.ok(entry.ok, `${h.name}: ${entry.ok ? '' : entry.failure.message}`);
      assert.equal(entryHash(backend, entry.value), h.hash, h.name);
    }
    assert.equal(doc.rejects.length, 10);
    for (const r of doc.rejects) {
      const entry = parseEntryLine(r.line);
      assert.equal(entry.ok, false, r.name);
      if (!entry.ok) assert.equal(entry.failure.message, r.error, r.name);
    }
    assert.equal(doc.chains.length, 8);
    for (const c of doc.chains) {
      const entries: RecorderEntry[] = c.lines.map((line) => {
        const entry = parseEntryLine(line);
        assert.ok(entry.ok, c.name);
        return entry.value;
      });
      const verified = verifyEntryChain(backend, entries);
      assert.equal(verified.ok ? '' : verified.failure.message, c.error, c.name);
    }
  },
  escapes(e) {
    const table = JSON.parse(vectorText(e.file)) as {
      entries: Array<{ codepoint: string; go_json_hex: string }>;
    };
    assert.equal(table.entries.length, 130);
    for (const entry of table.entries) {
      const encoded = goString(String.fromCodePoint(parseInt(entry.codepoint, 16)));
      assert.equal(toHex(utf8(encoded)), entry.go_json_hex, `U+${entry.codepoint}`);
    }
  },
  'evidence-v2'(e) {
    const key = fromHex(e.keys[0] ?? '');
    assert.ok(key);
    const verified = verifyEvidenceReceiptV2(backend, vectorText(e.file), key);
    checkVerdict(e, verified.ok, verified.ok ? undefined : verified.failure.message);
    checkClass(e, verified.ok ? undefined : verified.failure.class);
  },
};

for (const e of expectations) {
  const extra = [e.keys.map((k) => k.slice(0, 8)).join('+'), ...e.endorsements]
    .filter(Boolean)
    .join(' ');
  test(`${e.kind} ${e.file}${extra ? ` [${extra}]` : ''} is ${e.expect}`, () => {
    const check = checks[e.kind];
    assert.ok(check, `no check for kind ${e.kind}`);
    check(e);
  });
}
