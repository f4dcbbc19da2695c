// What upstream TLS trusts besides Node's bundled roots: the system's CA bundle (where a
// self-hosted runner has its internal CAs) and `--upstream-ca FILE`. An --upstream-ca file that
// holds no certificate would be taken without a word, and every origin it was meant for refused.
import { X509Certificate } from 'node:crypto';
import type { CliIo } from './io.js';
import { SYSTEM_CA_BUNDLES } from '../system-ca-bundles.js';

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

/** The system's CA bundle (PEM): the first of SYSTEM_CA_BUNDLES there; undefined if none is. */
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
