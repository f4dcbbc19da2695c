// The trust store for upstream TLS: Node's bundled roots, plus the CAs the engine is given
// (the system's bundle, --upstream-ca), and nothing else (not NODE_EXTRA_CA_CERTS from the
// engine's environment, which Node's default store takes in). Parsing some 140 root certificates into a store costs tens of
// milliseconds, so the store is built once, on first use, and every upstream connection
// shares it.

import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

export function upstreamTrust(extraCa: readonly string[]): () => SecureContext {
  let context: SecureContext | undefined;
  return () => (context ??= createSecureContext({ ca: [...rootCertificates, ...extraCa] }));
}
