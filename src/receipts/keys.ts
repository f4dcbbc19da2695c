// Ed25519 key formats: PEM (PKCS#8 private, SPKI public), Pipelock's text forms and raw hex.
import { bytesEqual, concatBytes, fromBase64, fromHex, toBase64, toHex } from './bytes.js';
import type { CryptoBackend } from './crypto.js';

export const PIPELOCK_PUBLIC_HEADER = 'pipelock-ed25519-public-v1';
export const PIPELOCK_PRIVATE_HEADER = 'pipelock-ed25519-private-v1';

// Fixed DER prefixes of Ed25519 keys (RFC 8410); the 32 key bytes follow.
const SPKI_PREFIX = fromHex('302a300506032b6570032100') ?? new Uint8Array();
const PKCS8_PREFIX = fromHex('302e020100300506032b657004220420') ?? new Uint8Array();

export type KeyResult = { ok: true; key: Uint8Array } | { ok: false; error: string };

const PRIVATE_FOR_PUBLIC: KeyResult = {
  ok: false,
  error:
    'a private key where the public key is needed: give its public key instead (keygen writes it beside signing-key.pem as public-key.pem)',
};

/** A 32-byte public key from PEM (SPKI), Pipelock public key text, or 64 hex characters. */
export function parsePublicKey(text: string): KeyResult {
  const trimmed = text.trim();
  if (/^-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/.test(trimmed)) return PRIVATE_FOR_PUBLIC;
  if (trimmed.startsWith(PIPELOCK_PRIVATE_HEADER)) return PRIVATE_FOR_PUBLIC;
  if (trimmed.startsWith('-----BEGIN')) {
    const der = pemBody(trimmed, 'PUBLIC KEY');
    if (!der.ok) return der;
    return derKey(der.key, SPKI_PREFIX, 'an Ed25519 SPKI public key');
  }
  if (trimmed.startsWith(PIPELOCK_PUBLIC_HEADER))
    return pipelockKey(trimmed, PIPELOCK_PUBLIC_HEADER, 32);
  if (/^[0-9a-fA-F]{64}$/.test(trimmed))
    return { ok: true, key: fromHex(trimmed) ?? new Uint8Array() };
  return {
    ok: false,
    error: `not a public key: expected a PEM public key, "${PIPELOCK_PUBLIC_HEADER}" text or 64 hex characters`,
  };
}

/**
 * The 32-byte seed of a private key in PEM (PKCS#8), Pipelock private key text or 64 hex. For the
 * Pipelock form (seed ‖ public key) the embedded public key must belong to the seed.
 */
export function parsePrivateKey(backend: CryptoBackend, text: string): KeyResult {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    const der = pemBody(trimmed, 'PRIVATE KEY');
    if (!der.ok) return der;
    return derKey(der.key, PKCS8_PREFIX, 'an Ed25519 PKCS#8 private key');
  }
  if (trimmed.startsWith(PIPELOCK_PRIVATE_HEADER)) {
    const pair = pipelockKey(trimmed, PIPELOCK_PRIVATE_HEADER, 64);
    if (!pair.ok) return pair;
    const seed = pair.key.slice(0, 32);
    if (!bytesEqual(backend.ed25519PublicKey(seed), pair.key.slice(32))) {
      return {
        ok: false,
        error: 'private key text: the embedded public key does not match the seed',
      };
    }
    return { ok: true, key: seed };
  }
  if (/^[0-9a-fA-F]{64}$/.test(trimmed))
    return { ok: true, key: fromHex(trimmed) ?? new Uint8Array() };
  return {
    ok: false,
    error: `not a private key: expected a PEM private key, "${PIPELOCK_PRIVATE_HEADER}" text or a 64-hex seed`,
  };
}

function pemBody(pem: string, label: string): KeyResult {
  const match = new RegExp(
    `^-----BEGIN ${label}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+)-----END ${label}-----$`,
  ).exec(pem);
  const der = match?.[1] === undefined ? undefined : fromBase64(match[1].replace(/[\r\n]/g, ''));
  return der ? { ok: true, key: der } : { ok: false, error: `not a PEM "${label}" block` };
}

function derKey(der: Uint8Array, prefix: Uint8Array, what: string): KeyResult {
  if (der.length !== prefix.length + 32 || !bytesEqual(der.slice(0, prefix.length), prefix)) {
    return { ok: false, error: `PEM key is not ${what}` };
  }
  return { ok: true, key: der.slice(prefix.length) };
}

// Pipelock's reader: header line, then standard base64 of the key bytes.
function pipelockKey(trimmed: string, header: string, length: number): KeyResult {
  const newline = trimmed.indexOf('\n');
  if (newline < 0 || trimmed.slice(0, newline) !== header) {
    return { ok: false, error: `key text must be "${header}" and one base64 line` };
  }
  const key = fromBase64(trimmed.slice(newline + 1).trim());
  if (!key) return { ok: false, error: `${header}: invalid base64` };
  if (key.length !== length)
    return { ok: false, error: `${header}: key is ${key.length} bytes, want ${length}` };
  return { ok: true, key };
}

function pem(label: string, der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function encodePublicKeyPem(publicKey: Uint8Array): string {
  return pem('PUBLIC KEY', concatBytes(SPKI_PREFIX, publicKey));
}

export function encodePrivateKeyPem(seed: Uint8Array): string {
  return pem('PRIVATE KEY', concatBytes(PKCS8_PREFIX, seed));
}

export function encodePipelockPublicKey(publicKey: Uint8Array): string {
  return `${PIPELOCK_PUBLIC_HEADER}\n${toBase64(publicKey)}\n`;
}

export function encodePipelockPrivateKey(backend: CryptoBackend, seed: Uint8Array): string {
  return `${PIPELOCK_PRIVATE_HEADER}\n${toBase64(concatBytes(seed, backend.ed25519PublicKey(seed)))}\n`;
}

/** The `signer_key` spelling of a public key: 64 lowercase hex characters. */
export function publicKeyHex(publicKey: Uint8Array): string {
  return toHex(publicKey);
}
