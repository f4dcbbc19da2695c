import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readRegularFileAtMost } from '../../src/regular-file.js';
import { scratchDir } from '../scratch.js';

const HINT = 'give the path of a file';

test('a FIFO is refused without being opened: a writer waiting for a reader goes on waiting', async () => {
  const fifo = join(scratchDir('regular-file-'), 'pipe');
  execFileSync('mkfifo', [fifo]);
  // Its open() returns once a reader opens the FIFO; then it writes and exits.
  const writer = spawn('sh', ['-c', `echo written > '${fifo}'`], { stdio: 'ignore' });
  try {
    await assert.rejects(readRegularFileAtMost(fifo, 100, HINT), {
      message: `not a regular file; ${HINT}`,
    });
    await sleep(300);
    assert.equal(writer.exitCode, null, 'the FIFO was opened: its writer went on');
  } finally {
    if (writer.exitCode === null && writer.signalCode === null) {
      const exited = once(writer, 'exit');
      writer.kill();
      await exited;
    }
  }
});

test('a regular file is read up to the limit, never past it', async () => {
  const file = join(scratchDir('regular-file-'), 'data');
  writeFileSync(file, 'x'.repeat(50));
  assert.equal((await readRegularFileAtMost(file, 100, HINT)).length, 50);
  assert.equal((await readRegularFileAtMost(file, 20, HINT)).length, 20);
});
