import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { toHex, utf8 } from '../../src/receipts/bytes.js';
import {
  encodePipelockPrivateKey,
  encodePipelockPublicKey,
  encodePrivateKeyPem,
  encodePublicKeyPem,
  parsePrivateKey,
  parsePublicKey,
  publicKeyHex,
} from '../../src/receipts/keys.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { KEY_A } from './vectors.js';

const backend = createNodeBackend();
const seed = backend.sha256(utf8('pipelock-conformance-test-key-v1'));
const publicKey = backend.ed25519PublicKey(seed);

test('the conformance seed phrase gives key A', () => {
  assert.equal(publicKeyHex(publicKey), KEY_A);
});

test('every public key form round-trips to the same 32 bytes', () => {
  for (const text of [
    encodePublicKeyPem(publicKey),
    encodePipelockPublicKey(publicKey),
    KEY_A,
    KEY_A.toUpperCase() + '\n',
  ]) {
    const parsed = parsePublicKey(text);
    assert.ok(parsed.ok, text);
    assert.equal(toHex(parsed.key), KEY_A);
  }
});

test('every private key form round-trips to the same seed', () => {
  for (const text of [encodePrivateKeyPem(seed), encodePipelockPrivateKey(backend, seed)]) {
    const parsed = parsePrivateKey(backend, text);
    assert.ok(parsed.ok, text);
    assert.equal(toHex(parsed.key), toHex(seed));
  }
});

test('our PEM is what OpenSSL (node:crypto) reads and writes', () => {
  const pem = encodePrivateKeyPem(seed);
  const key = createPrivateKey(pem);
  assert.equal(key.export({ type: 'pkcs8', format: 'pem' }).toString(), pem);
  assert.equal(
    createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
    encodePublicKeyPem(publicKey),
  );
});

test('Pipelock key text has the documented shape', () => {
  assert.match(
    encodePipelockPublicKey(publicKey),
    /^pipelock-ed25519-public-v1\n[A-Za-z0-9+/]{43}=\n$/,
  );
  assert.match(
    encodePipelockPrivateKey(backend, seed),
    /^pipelock-ed25519-private-v1\n[A-Za-z0-9+/]{86}==\n$/,
  );
});

test('a private key given where its public key is needed is named as one', () => {
  for (const text of [encodePrivateKeyPem(seed), encodePipelockPrivateKey(backend, seed)]) {
    assert.equal(
      errorOf(parsePublicKey(text)),
      'a private key where the public key is needed: give its public key instead (keygen writes it beside signing-key.pem as public-key.pem)',
    );
  }
});

test('wrong headers, lengths and mismatched private halves are refused with a reason', () => {
  assert.match(errorOf(parsePublicKey('pipelock-ed25519-public-v1\nAAAA\n')), /3 bytes, want 32/);
  assert.match(errorOf(parsePublicKey(KEY_A.slice(2))), /not a public key/);
  assert.match(
    errorOf(parsePublicKey('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')),
    /PUBLIC KEY/,
  );
  const other = backend.sha256(utf8('other'));
  const mixed = encodePipelockPrivateKey(backend, seed).replace(/\n(.*)\n$/, (_m, b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    Buffer.from(backend.ed25519PublicKey(other)).copy(bytes, 32);
    return `\n${bytes.toString('base64')}\n`;
  });
  assert.match(errorOf(parsePrivateKey(backend, mixed)), /does not match the seed/);
});

function errorOf(result: { ok: true } | { ok: false; error: string }): string {
  return result.ok ? '' : result.error;
}
