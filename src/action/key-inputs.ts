// The signing-key and public-key inputs (DESIGN §8): each is a path (relative to the working
// directory) or the key itself. Decided and checked before anything starts: a value naming
// something that exists must be a small regular file holding a key, anything else must be a
// key, and a pinned public key must be the signing key's.

import { resolve } from 'node:path';
import {
  parsePrivateKey,
  parsePublicKey,
  publicKeyHex,
  type CryptoBackend,
} from '../receipts/index.js';
import {
  PIPELOCK_PRIVATE_HEADER,
  PIPELOCK_PUBLIC_HEADER,
  type KeyResult,
} from '../receipts/keys.js';
import { readRegularFileAtMost } from '../regular-file.js';

/** A key is about a hundred bytes; a file many times that holds something else. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Where a key input's key is: the file named (a signing key file is passed on as it is, so the
 * boundary hides it from the agent), or the value itself (main writes an inline signing key to
 * a file only the runner user can read).
 */
export type KeySource = { readonly file: string } | { readonly inline: string };

export interface KeyInputs {
  readonly signing: KeySource | undefined;
  /** The pinned public key, as 64 hex characters. */
  readonly publicKey: string | undefined;
}

interface KeyKind {
  readonly input: 'signing-key' | 'public-key';
  readonly formats: string;
  readonly parse: (text: string) => KeyResult;
}

export async function checkKeyInputs(
  values: { readonly signing: string | undefined; readonly publicKey: string | undefined },
  workdir: string,
  backend: CryptoBackend,
): Promise<KeyInputs> {
  const signing =
    values.signing === undefined
      ? undefined
      : await keyInput(values.signing, workdir, {
          input: 'signing-key',
          formats: `PEM PKCS#8, ${PIPELOCK_PRIVATE_HEADER} text or 64 hex characters`,
          parse: (text) => parsePrivateKey(backend, text),
        });
  const pinned =
    values.publicKey === undefined
      ? undefined
      : await keyInput(values.publicKey, workdir, {
          input: 'public-key',
          formats: `PEM SPKI, ${PIPELOCK_PUBLIC_HEADER} text or 64 hex characters`,
          parse: parsePublicKey,
        });
  const publicKey = pinned === undefined ? undefined : publicKeyHex(pinned.key);
  if (signing !== undefined && publicKey !== undefined) {
    const signer = publicKeyHex(backend.ed25519PublicKey(signing.key));
    if (signer !== publicKey) {
      throw new Error(
        `input public-key does not match signing-key: it pins ${publicKey}, but the signing key's public key is ${signer}; the run could never verify as valid`,
      );
    }
  }
  return { signing: signing?.source, publicKey };
}

async function keyInput(
  value: string,
  workdir: string,
  kind: KeyKind,
): Promise<{ source: KeySource; key: Uint8Array }> {
  const file = resolve(workdir, value);
  // Only a path is ever printed: the value may be a secret key. A value is known to be a path
  // when something exists there, or when it is shaped like one.
  const shown = printablePath(value);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readKeyFile(file);
  } catch (error) {
    // Only a system error has a code: then the open failed, and its message repeats the path.
    const { code } = error as NodeJS.ErrnoException;
    const opened = code === undefined;
    const problem = opened ? (error as Error).message : `cannot be read (${code})`;
    throw new Error(`input ${kind.input}: ${opened || shown ? file : HIDDEN}: ${problem}`, {
      cause: error,
    });
  }
  if (bytes === undefined) {
    const parsed = kind.parse(value);
    if (parsed.ok) return { source: { inline: value }, key: parsed.key };
    const looked = shown
      ? `"${value}" is neither an existing file (looked for ${file})`
      : `${HIDDEN} is neither an existing file (a path is taken relative to working-directory ${workdir})`;
    throw new Error(`input ${kind.input}: ${looked} nor a key (${kind.formats}): ${parsed.error}`);
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) {
    throw new Error(
      `input ${kind.input}: ${file}: more than ${MAX_KEY_FILE_BYTES} bytes, too big for a key file`,
    );
  }
  const parsed = kind.parse(new TextDecoder().decode(bytes));
  if (!parsed.ok) throw new Error(`input ${kind.input}: ${file}: ${parsed.error}`);
  return { source: { file }, key: parsed.key };
}

const HIDDEN = 'the value (not shown: it may be a secret key)';

// What cannot be opened for one of these reasons is not a file, so the value is the key itself.
const NOT_A_PATH = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ERR_INVALID_ARG_VALUE']);

/** At most one byte past the cap; undefined when nothing is there. */
async function readKeyFile(file: string): Promise<Uint8Array | undefined> {
  try {
    return await readRegularFileAtMost(
      file,
      MAX_KEY_FILE_BYTES + 1,
      'give the path of a key file, or the key itself',
    );
  } catch (error) {
    if (NOT_A_PATH.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
}

/**
 * One line without spaces that ends in a file extension or starts with ./ or ../: no key text
 * has that shape (PEM has spaces, base64 and hex have no dot), so printing it shows no key.
 */
function printablePath(value: string): boolean {
  return (
    value.length <= 1024 &&
    !/[\s\p{Cc}]/u.test(value) &&
    /^\.\.?\/|\.[A-Za-z0-9]{1,10}$/.test(value)
  );
}
