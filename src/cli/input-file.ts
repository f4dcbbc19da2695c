// Small inputs a command reads from files (a policy hash, an endorsement): regular files only,
// read whole, with errors that name the file and are usage problems (exit 2), not verdicts.
import { stat } from 'node:fs/promises';
import type { CliIo } from './io.js';

/** An input other than the evidence itself could not be used (exit 2). */
export class InputError extends Error {}

export async function readInputText(file: string, what: string, io: CliIo): Promise<string> {
  // A FIFO or a device would be read for ever.
  if ((await stat(file).catch(() => undefined))?.isFile() === false)
    throw new InputError(`cannot read ${what} ${file}: not a regular file`);
  try {
    return new TextDecoder().decode(await io.readFile(file));
  } catch (error) {
    throw new InputError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

export async function loadPolicyHash(file: string, io: CliIo): Promise<string> {
  const hash = (await readInputText(file, 'policy hash', io)).trim();
  if (hash === '') throw new InputError(`policy hash file ${file} is empty`);
  // The policy itself given by mistake: say so, rather than compare (and print) all of it.
  const lines = hash.split('\n').length;
  if (lines > 1)
    throw new InputError(
      `policy hash file ${file} holds ${lines} lines, not one hash: give the policy's hash (policy-hash.txt, or the first field of sha256sum POLICY)`,
    );
  // Receipts carry the hex in lower case; PowerShell's Get-FileHash prints it in upper case.
  return /^[0-9a-f]{64}$/i.test(hash) ? hash.toLowerCase() : hash;
}
