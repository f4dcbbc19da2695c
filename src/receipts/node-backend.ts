// CryptoBackend on node:crypto: the only file in the receipts module that imports Node.
import { createPrivateKey, createPublicKey, hash, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CryptoBackend } from './crypto.js';

// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function privateKeyOf(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new Error(`Ed25519 seed must be 32 bytes, got ${seed.length}`);
  return createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
}

export function createNodeBackend(): CryptoBackend {
  // A chain is signed and verified with the same few keys thousands of times; importing a key
  // costs more than using it, so each is imported once.
  const privateKeys = new Map<string, { key: KeyObject; publicKey: Uint8Array }>();
  // A writer signs every receipt with the same seed: the last one is recognised by identity
  // (and its bytes, which a caller could have changed), without hex-encoding it again.
  let last:
    | { seed: Uint8Array; copy: Buffer; entry: { key: KeyObject; publicKey: Uint8Array } }
    | undefined;
  const privateKeyFor = (seed: Uint8Array): { key: KeyObject; publicKey: Uint8Array } => {
    if (last?.seed === seed && last.copy.equals(seed)) return last.entry;
    const id = Buffer.from(seed).toString('hex');
    let entry = privateKeys.get(id);
    if (!entry) {
      const key = privateKeyOf(seed);
      const jwk = createPublicKey(key).export({ format: 'jwk' });
      entry = { key, publicKey: new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url')) };
      privateKeys.set(id, entry);
    }
    last = { seed, copy: Buffer.from(seed), entry };
    return entry;
  };
  const publicKeys = new Map<string, KeyObject>();
  const publicKeyOf = (raw: Uint8Array): KeyObject => {
    const id = Buffer.from(raw).toString('hex');
    let key = publicKeys.get(id);
    if (!key) {
      key = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') },
        format: 'jwk',
      });
      publicKeys.set(id, key);
    }
    return key;
  };
  return {
    sha256: (data) => hash('sha256', data, 'buffer'),
    ed25519PublicKey: (seed) => privateKeyFor(seed).publicKey.slice(),
    ed25519Sign: (seed, message) => new Uint8Array(sign(null, message, privateKeyFor(seed).key)),
    ed25519Verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        return verify(null, message, publicKeyOf(publicKey), signature);
      } catch {
        return false;
      }
    },
  };
}
