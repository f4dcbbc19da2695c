// Runs the CLI in-process with real files, capturing what it prints.
import { readFile } from 'node:fs/promises';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

/** Reads real files; what a command prints is dropped. */
export const quietIo: CliIo = {
  out: () => undefined,
  err: () => undefined,
  readFile: (path) => readFile(path),
};

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function cli(...argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    out: (text) => (stdout += text),
    err: (text) => (stderr += text),
    readFile: (path) => readFile(path),
  });
  return { code, stdout, stderr };
}
