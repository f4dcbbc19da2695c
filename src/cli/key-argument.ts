// Key options (`--public-key`, `--signing-key`) take the key itself (PEM, Pipelock text
// form, 64 hex) or a file holding one, the way Pipelock resolves `--key`: an existing file
// is read; something that looks like a path but does not exist is an error; anything else
// is the key itself.
import {
  parsePrivateKey,
  parsePublicKey,
  publicKeyHex,
  type CryptoBackend,
} from '../receipts/index.js';
import type { CliIo } from './io.js';
import { isRegularFile } from '../regular-file.js';

/** The key could not be read or parsed: a usage problem, not a verdict. */
export class KeyArgumentError extends Error {}

function looksLikePath(arg: string): boolean {
  const inlineKey = /^\s*(-----BEGIN |pipelock-ed25519-|[0-9a-fA-F]{64}\s*$)/.test(arg);
  return !inlineKey && (/[/\\]/.test(arg) || arg.startsWith('.') || /\.[A-Za-z0-9]+$/.test(arg));
}

async function keyArgumentText(
  arg: string,
  what: string,
  io: CliIo,
): Promise<{ text: string; source: string }> {
  if (await isRegularFile(arg)) {
    try {
      return { text: new TextDecoder().decode(await io.readFile(arg)), source: arg };
    } catch (error) {
      throw new KeyArgumentError(`cannot read ${what} ${arg}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (looksLikePath(arg)) throw new KeyArgumentError(`${what} file ${arg} not found`);
  return { text: arg, source: '(inline)' };
}

/** The public key as 64 lowercase hex characters. */
export async function resolvePublicKey(arg: string, io: CliIo): Promise<string> {
  const { text, source } = await keyArgumentText(arg, 'public key', io);
  const parsed = parsePublicKey(text);
  if (!parsed.ok) throw new KeyArgumentError(`public key ${source}: ${parsed.error}`);
  return publicKeyHex(parsed.key);
}

/** The 32-byte Ed25519 seed of a private key. */
export async function resolvePrivateKey(
  arg: string,
  backend: CryptoBackend,
  io: CliIo,
): Promise<Uint8Array> {
  const { text, source } = await keyArgumentText(arg, 'signing key', io);
  const parsed = parsePrivateKey(backend, text);
  if (!parsed.ok) throw new KeyArgumentError(`signing key ${source}: ${parsed.error}`);
  return parsed.key;
}
