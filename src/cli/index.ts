#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { isMainThread } from 'node:worker_threads';
import { main } from './main.js';

// The engine's body-scanning threads load this bundle too: they run no command.
if (isMainThread) runCommand();

function runCommand(): void {
  const io = {
    out: writerUntilReaderGone(process.stdout),
    err: writerUntilReaderGone(process.stderr),
    readFile: (path: string) => readFile(path),
  };

  main(process.argv.slice(2), io)
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error: unknown) => {
        process.stderr.write(
          `pipelock-egress: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        );
        process.exitCode = 70;
      },
    )
    // A command started by a parent over IPC (the engine, by run) is done: the open channel
    // would keep the process alive, however the command ended.
    .finally(() => {
      if (process.connected) process.disconnect();
    });
}

/**
 * A reader that stops early (`| head`, a log collector that died) closes the pipe: the rest
 * of that stream is dropped and the command goes on, instead of a crash that would read as a
 * failure (or, for `proxy`, stop traffic before the evidence is sealed; the evidence files,
 * not the log, are the record).
 */
function writerUntilReaderGone(stream: NodeJS.WriteStream): (text: string) => void {
  let readerGone = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    readerGone = true;
  });
  return (text) => {
    if (!readerGone) stream.write(text);
  };
}
