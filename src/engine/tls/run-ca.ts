// The per-run interception CA: an ECDSA P-256 key that exists only in the engine's memory
// (never written anywhere), its certificate (the one file the agent's trust store gets), and
// leaf certificates minted per host on first use and kept in a bounded cache.

import { constants, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import {
  buildCaCertificate,
  distinguishedName,
  LeafIssuer,
  type CertificateSigner,
} from './certificates.js';
import type { LeafNames } from './leaf-names.js';

/** Leaves outlive no run: a CI job is capped at days, and the key dies with the engine. */
const LIFETIME_MS = 7 * 24 * 3600 * 1000;
/** Clients whose clocks run a little behind must not see a certificate from the future. */
const BACKDATE_MS = 3600 * 1000;
const CACHED_HOSTS = 1024;

export class RunCertificateAuthority {
  /** The CA certificate (PEM) the agent's trust store is given. */
  readonly certificatePem: string;
  private readonly leaves: LeafIssuer;
  /** One key for every leaf: minting then costs a signature, not a key generation. */
  private readonly leafKeyPem: string;
  private readonly contexts = new Map<string, SecureContext>();

  private constructor(now: Date) {
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const caSigner = signerFor(ca.privateKey, ca.publicKey);
    const caName = distinguishedName(`pipelock-egress run CA ${randomBytes(4).toString('hex')}`);
    const validity = {
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + LIFETIME_MS),
    };
    this.certificatePem = buildCaCertificate(caName, caSigner, validity, randomBytes(16)).pem;
    this.leaves = new LeafIssuer(
      { leafPublicKey: spki(leaf.publicKey), issuer: caName, validity },
      caSigner,
    );
    this.leafKeyPem = leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  static create(now = new Date()): RunCertificateAuthority {
    return new RunCertificateAuthority(now);
  }

  /** The TLS context presenting a certificate for `names`, minted on first use. */
  contextFor(names: LeafNames): SecureContext {
    const key = JSON.stringify(names);
    const cached = this.contexts.get(key);
    if (cached !== undefined) {
      // Re-inserted: the map's order is the recency order for eviction.
      this.contexts.delete(key);
      this.contexts.set(key, cached);
      return cached;
    }
    const leaf = this.leaves.issue(names, randomBytes(16));
    // A client's renegotiation (TLS 1.2) would run a second handshake inside the judged
    // session, each costing the engine a signature: refused (a no_renegotiation alert).
    const context = createSecureContext({
      key: this.leafKeyPem,
      cert: leaf.pem,
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
    });
    if (this.contexts.size >= CACHED_HOSTS) {
      const oldest = this.contexts.keys().next().value;
      if (oldest !== undefined) this.contexts.delete(oldest);
    }
    this.contexts.set(key, context);
    return context;
  }
}

function signerFor(privateKey: KeyObject, publicKey: KeyObject): CertificateSigner {
  return {
    subjectPublicKey: spki(publicKey),
    sign: (tbs) => sign('sha256', tbs, privateKey),
  };
}

function spki(publicKey: KeyObject): Uint8Array {
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}
