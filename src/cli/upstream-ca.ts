// What upstream TLS trusts besides Node's bundled roots: the system's CA bundle (where a
// self-hosted runner has its internal CAs) and `--upstream-ca FILE`. An --upstream-ca file that
// holds no certificate would be taken without a word, and every origin it was meant for refused.
import { X509Certificate } from 'node:crypto';
import type { CliIo } from './io.js';

export type UpstreamCa = { ok: true; pem: string } | { ok: false; problem: string };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export async function readUpstreamCa(io: CliIo, file: string): Promise<UpstreamCa> {
  let pem: string;
  try {
    pem = new TextDecoder().decode(await io.readFile(file));
  } catch (error) {
    return { ok: false, problem: `cannot read --upstream-ca ${file}: ${(error as Error).message}` };
  }
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    return {
      ok: false,
      problem: `--upstream-ca ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM`,
    };
  }
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      return {
        ok: false,
        problem: `--upstream-ca ${file}: certificate ${index + 1} of ${blocks.length} cannot be read: ${(error as Error).message}`,
      };
    }
  }
  return { ok: true, pem };
}

/**
 * Where distributions keep the system's CA bundle; the first that exists is read. Never a path
 * from the environment (SSL_CERT_FILE): whoever starts the engine would widen its trust unseen.
 */
export const SYSTEM_CA_BUNDLES: readonly string[] = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS
  '/etc/ssl/cert.pem', // Alpine
];

/** The system's CA bundle (PEM), or undefined on a system that has none. */
export async function readSystemCaBundle(
  io: CliIo,
  candidates = SYSTEM_CA_BUNDLES,
): Promise<UpstreamCa | undefined> {
  for (const file of candidates) {
    try {
      return { ok: true, pem: new TextDecoder().decode(await io.readFile(file)) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      return {
        ok: false,
        problem: `cannot read the system CA bundle ${file}, which upstream TLS trusts: ${(error as Error).message}`,
      };
    }
  }
  return undefined;
}
