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
