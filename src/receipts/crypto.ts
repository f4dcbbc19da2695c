// The two primitives the receipts core needs, injected so the core stays free of platform imports.

export interface CryptoBackend {
  /** SHA-256 of bytes, or of a string's UTF-8 encoding (lone surrogates as U+FFFD). */
  sha256(data: Uint8Array | string): Uint8Array;
  /** The 32-byte Ed25519 public key of a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** RFC 8032 Ed25519 (PureEdDSA) signature of `message` with the key derived from `seed`. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Strict RFC 8032 verification (non-canonical S rejected). */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}
