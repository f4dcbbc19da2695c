// `keygen --out DIR`: a fresh Ed25519 signing key and its public key in the forms verifiers take.
// Never replaces a file: a key that signed evidence must not vanish under a typo.
import { randomBytes } from 'node:crypto';
import { chmod, rm, stat, writeFile } from 'node:fs/promises';
import { makeDirectories } from './make-directories.js';
import path from 'node:path';
import {
  encodePipelockPublicKey,
  encodePrivateKeyPem,
  encodePublicKeyPem,
  publicKeyHex,
} from '../receipts/index.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { type CliIo, UsageError } from './io.js';
import { optionValue, parseOptions } from './options.js';

export const SIGNING_KEY_FILE = 'signing-key.pem';
export const PUBLIC_KEY_PEM_FILE = 'public-key.pem';
export const PUBLIC_KEY_PIPELOCK_FILE = 'public-key.pipelock';

/** The --out directory is someone else's to change: the keys would not be only ours. */
class ForeignDirectory extends Error {}

export async function keygenCommand(args: readonly string[], io: CliIo): Promise<number> {
  const out = optionValue(parseOptions('keygen', args, { single: ['out'] }), 'out');
  if (out === undefined) throw new UsageError('keygen: --out DIR is required');

  const seed = new Uint8Array(randomBytes(32));
  const publicKey = createNodeBackend().ed25519PublicKey(seed);
  const files: Array<[name: string, content: string, mode: number]> = [
    [SIGNING_KEY_FILE, encodePrivateKeyPem(seed), 0o600],
    [PUBLIC_KEY_PEM_FILE, encodePublicKeyPem(publicKey), 0o644],
    [PUBLIC_KEY_PIPELOCK_FILE, encodePipelockPublicKey(publicKey), 0o644],
  ];
  const written: string[] = [];
  try {
    await makeDirectories(out, 0o750);
    const info = await stat(out);
    if (info.uid !== process.getuid?.() || (info.mode & 0o022) !== 0)
      throw new ForeignDirectory(
        info.uid !== process.getuid?.()
          ? `${out} belongs to uid ${info.uid}, who could swap the keys in it; choose a directory of your own`
          : `${out} is writable by other users (mode ${(info.mode & 0o777).toString(8)}), who could swap the keys in it; choose a directory only you can write`,
      );
    for (const [name, content, mode] of files) {
      const file = path.join(out, name);
      // `wx`: fail rather than replace, even if the file appears after any check we could make.
      await writeFile(file, content, { flag: 'wx', mode });
      written.push(file);
      await chmod(file, mode);
    }
  } catch (error) {
    await Promise.all(written.map((file) => rm(file, { force: true })));
    const err = error as NodeJS.ErrnoException;
    const reason =
      error instanceof ForeignDirectory
        ? error.message
        : err.code === 'EEXIST'
          ? `${err.path ?? out} already exists; refusing to overwrite a key (move it away or choose another --out)`
          : `cannot write keys to ${out}: ${err.message}`;
    io.err(`pipelock-egress keygen: ${reason}\n`);
    return 1;
  }
  io.out(`${publicKeyHex(publicKey)}\n`);
  io.err(
    `pipelock-egress keygen: wrote ${written.join(', ')}; keep ${SIGNING_KEY_FILE} secret, share the public key\n`,
  );
  return 0;
}
