// The CLI's contact with the outside, so commands can be run and tested as plain functions.

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readFile: (path: string) => Promise<Uint8Array>;
}

/** A usage mistake: the command line itself is wrong (exit 2, usage on stderr). */
export class UsageError extends Error {}

/** `-h` or `--help` where an option may stand: the usage is printed instead (exit 0). */
export class HelpRequested extends Error {}

export function isHelpOption(arg: string | undefined): boolean {
  return arg === '-h' || arg === '--help';
}
