// The CLI's contact with the outside, so commands can be run and tested as plain functions.

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readFile: (path: string) => Promise<Uint8Array>;
}

/** A usage mistake: the command line itself is wrong (exit 2, usage on stderr). */
export class UsageError extends Error {}
