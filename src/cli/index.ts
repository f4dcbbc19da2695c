#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { isMainThread } from 'node:worker_threads';
import { main } from './main.js';

// The engine's body-scanning threads load this bundle too: they run no command.
if (isMainThread) runCommand();

function runCommand(): void {
  // A reader that stops early (`| head`) closes the pipe: the rest of the output is dropped and
  // the exit code stays the command's, instead of a crash that would read as a failure.
  let readerGone = false;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    readerGone = true;
  });

  const io = {
    out: (text: string) => {
      if (!readerGone) process.stdout.write(text);
    },
    err: (text: string) => process.stderr.write(text),
    readFile: (path: string) => readFile(path),
  };

  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `pipelock-egress: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 70;
    },
  );
}
