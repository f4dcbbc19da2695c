// Keys given on the command line (`--public-key`, `--signing-key`) and as action inputs
// (`public-key`, `signing-key`): the key itself (PEM, Pipelock text form, 64 hex) or the path of
// a file holding one, the way Pipelock resolves `--key`. Whatever exists at the path must be a
// small regular file holding a key; anything else must be the key itself. A value is printed
// only when it is a path: a malformed inline private key must not end up in a log.
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

/** The key could not be read or parsed: a usage problem, not a verdict. */
export class KeyArgumentError extends Error {}

/** A key is about a hundred bytes; a file many times that holds something else. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** Where a key came from: the file named, or the value itself. */
export type KeySource = { readonly file: string } | { readonly inline: string };

export interface ReadKey {
  readonly key: Uint8Array;
  readonly source: KeySource;
}

interface KeyKind {
  readonly formats: string;
  readonly parse: (text: string) => KeyResult;
}

const PUBLIC: KeyKind = {
  formats: `PEM SPKI, ${PIPELOCK_PUBLIC_HEADER} text or 64 hex characters`,
  parse: parsePublicKey,
};

const privateKind = (backend: CryptoBackend): KeyKind => ({
  formats: `PEM PKCS#8, ${PIPELOCK_PRIVATE_HEADER} text or 64 hex characters`,
  parse: (text) => parsePrivateKey(backend, text),
});

/**
 * A public key from `arg`, a path taken relative to `base`; errors start with `label`.
 */
export function readPublicKey(arg: string, label: string, base = process.cwd()): Promise<ReadKey> {
  return readKey(arg, label, base, PUBLIC);
}

/** The 32-byte Ed25519 seed of a private key, as readPublicKey reads a public one. */
export function readPrivateKey(
  arg: string,
  backend: CryptoBackend,
  label: string,
  base = process.cwd(),
): Promise<ReadKey> {
  return readKey(arg, label, base, privateKind(backend));
}

/** The public key as 64 lowercase hex characters. */
export async function resolvePublicKey(arg: string): Promise<string> {
  return publicKeyHex((await readPublicKey(arg, 'public key')).key);
}

/** The 32-byte Ed25519 seed of a private key. */
export async function resolvePrivateKey(arg: string, backend: CryptoBackend): Promise<Uint8Array> {
  return (await readPrivateKey(arg, backend, 'signing key')).key;
}

const HIDDEN = 'the value (not shown: it may be a secret key)';

async function readKey(arg: string, label: string, base: string, kind: KeyKind): Promise<ReadKey> {
  const file = resolve(base, arg);
  const shown = pathShaped(arg);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readKeyFile(file);
  } catch (error) {
    // A system error (it has a code) comes from opening: its message would repeat the path.
    const { code } = error as NodeJS.ErrnoException;
    const problem = code === undefined ? (error as Error).message : `cannot be read (${code})`;
    const named = code === undefined || shown ? file : HIDDEN;
    throw new KeyArgumentError(`${label}: ${named}: ${problem}`, { cause: error });
  }
  if (bytes === undefined) {
    const parsed = kind.parse(arg);
    if (parsed.ok) return { key: parsed.key, source: { inline: arg } };
    const looked = shown
      ? `"${arg}" is neither an existing file (looked for ${file})`
      : `${HIDDEN} is neither an existing file (a path is taken relative to ${base})`;
    throw new KeyArgumentError(`${label}: ${looked} nor a key (${kind.formats}): ${parsed.error}`);
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) {
    throw new KeyArgumentError(
      `${label}: ${file}: more than ${MAX_KEY_FILE_BYTES} bytes, too big for a key file`,
    );
  }
  const parsed = kind.parse(new TextDecoder().decode(bytes));
  if (!parsed.ok) throw new KeyArgumentError(`${label}: ${file}: ${parsed.error}`);
  return { key: parsed.key, source: { file } };
}

/** What cannot be opened for one of these reasons is no file: the value is the key itself. */
const NOT_A_PATH = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'ERR_INVALID_ARG_VALUE']);

/** At most one byte past the limit; undefined when nothing is there. */
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
function pathShaped(value: string): boolean {
  return (
    value.length <= 1024 &&
    !/[\s\p{Cc}]/u.test(value) &&
    /^\.\.?\/|\.[A-Za-z0-9]{1,10}$/.test(value)
  );
}
