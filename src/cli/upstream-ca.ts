// What upstream TLS trusts besides Node's bundled roots: the system's CA bundle (where a
// self-hosted runner has its internal CAs) and `--upstream-ca FILE`. An --upstream-ca file that
// holds no certificate would be taken without a word, and every origin it was meant for refused.
import { X509Certificate } from 'node:crypto';
import type { CliIo } from './io.js';
import { SYSTEM_CA_BUNDLES } from '../system-ca-bundles.js';
import { isRegularFile, readRegularFileAtMost } from '../regular-file.js';

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

/** Far more than any distribution's bundle (some 200 KiB); a bigger file is no bundle. */
const MAX_SYSTEM_BUNDLE_BYTES = 16 * 1024 * 1024;

/**
 * The system's CA bundle (PEM): the first of SYSTEM_CA_BUNDLES that is a regular file, as the
 * boundary picks the one it covers; undefined if none is.
 */
export async function readSystemCaBundle(
  candidates = SYSTEM_CA_BUNDLES,
): Promise<UpstreamCa | undefined> {
  for (const file of candidates) {
    if (!(await isRegularFile(file))) continue;
    try {
      const bytes = await readRegularFileAtMost(file, MAX_SYSTEM_BUNDLE_BYTES + 1);
      if (bytes.length > MAX_SYSTEM_BUNDLE_BYTES)
        throw new Error(`it is over ${MAX_SYSTEM_BUNDLE_BYTES} bytes`);
      return { ok: true, pem: new TextDecoder().decode(bytes) };
    } catch (error) {
      return {
        ok: false,
        problem: `cannot read the system CA bundle ${file}, which upstream TLS trusts: ${(error as Error).message}`,
      };
    }
  }
  return undefined;
}
