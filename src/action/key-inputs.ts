// The signing-key and public-key inputs (DESIGN §8), read as the CLI reads its key options
// (a path relative to the working directory, or the key itself), before anything starts; a
// pinned public key must be the signing key's.

import { publicKeyHex, type CryptoBackend } from '../receipts/index.js';
import { readPrivateKey, readPublicKey, type KeySource } from '../cli/key-argument.js';

export interface KeyInputs {
  /** A key file is passed on as it is (the boundary hides it from the agent). */
  readonly signing: KeySource | undefined;
  /** The pinned public key, as 64 hex characters. */
  readonly publicKey: string | undefined;
}

export async function checkKeyInputs(
  values: { readonly signing: string | undefined; readonly publicKey: string | undefined },
  workdir: string,
  backend: CryptoBackend,
): Promise<KeyInputs> {
  const signing =
    values.signing === undefined
      ? undefined
      : await readPrivateKey(values.signing, backend, 'input signing-key', workdir);
  const pinned =
    values.publicKey === undefined
      ? undefined
      : await readPublicKey(values.publicKey, 'input public-key', workdir);
  const publicKey = pinned === undefined ? undefined : publicKeyHex(pinned.key);
  if (signing !== undefined && publicKey !== undefined) {
    const signer = publicKeyHex(backend.ed25519PublicKey(signing.key));
    if (signer !== publicKey) {
      throw new Error(
        `input public-key (not shown: it may be a secret key) is not the public key of signing-key, ${signer}; the run could never verify as valid`,
      );
    }
  }
  return { signing: signing?.source, publicKey };
}
