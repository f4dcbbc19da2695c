// The Audit Packet a command was given: its pinned keys and policy hash read, the directory
// checked, and the packet read by `load`; or the reason it cannot be (a usage problem: exit 2).
import { stat } from 'node:fs/promises';
import { UnreadablePacket } from '../packet/check/check-packet.js';
import type { CryptoBackend } from '../receipts/index.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { UnreadableEvidence } from './evidence-source.js';
import type { CliIo } from './io.js';
import { InputError } from './input-file.js';
import { loadPolicyHash } from './policy-hash-file.js';
import { KeyArgumentError, resolvePublicKey } from './key-argument.js';
import { showInvisible } from '../invisible.js';

/** What a command names a packet by: its directory, the keys to pin, the reviewer's policy hash. */
export interface PacketArguments {
  readonly dir: string;
  readonly keyArgs: readonly string[];
  /** A file holding the policy hash every receipt must carry (default: policy-hash.txt). */
  readonly policyHashFile: string | undefined;
}

export type PacketLoader<T> = (
  dir: string,
  backend: CryptoBackend,
  pinnedKeys: readonly string[],
  options: { readonly policyHash?: string },
) => Promise<T>;

export type OpenedPacket<T> =
  { readonly ok: true; readonly packet: T } | { readonly ok: false; readonly error: string };

export async function openPacket<T>(
  prefix: string,
  { dir, keyArgs, policyHashFile }: PacketArguments,
  io: CliIo,
  load: PacketLoader<T>,
): Promise<OpenedPacket<T>> {
  let pinned: string[];
  let policyHash: string | undefined;
  try {
    pinned = await Promise.all(keyArgs.map((key) => resolvePublicKey(key)));
    policyHash =
      policyHashFile === undefined ? undefined : await loadPolicyHash(policyHashFile, io);
  } catch (error) {
    if (!(error instanceof KeyArgumentError) && !(error instanceof InputError)) throw error;
    return { ok: false, error: error.message };
  }
  if (!(await stat(dir).catch(() => undefined))?.isDirectory())
    return { ok: false, error: `${dir} is not a directory: give the Audit Packet directory` };
  // A long chain takes a while (about 33 s per 100,000 receipts): say what is happening.
  io.err(`${prefix}: verifying ${showInvisible(dir)} …\n`);
  try {
    const options = policyHash === undefined ? {} : { policyHash };
    return { ok: true, packet: await load(dir, createNodeBackend(), pinned, options) };
  } catch (error) {
    if (!(error instanceof UnreadablePacket) && !(error instanceof UnreadableEvidence)) throw error;
    return { ok: false, error: error.message };
  }
}
