import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { replaceFile } from '../../src/cli/replace-file.js';
import { scratchDir } from '../scratch.js';

test('a file written in place of another takes its name whole, with the mode asked for', async () => {
  const dir = scratchDir('replace-file-');
  const path = join(dir, 'run-ca.pem');
  await replaceFile(path, 'old', 0o600);
  await replaceFile(path, 'new', 0o644);
  assert.equal(readFileSync(path, 'utf8'), 'new');
  assert.equal(statSync(path).mode & 0o777, 0o644);
  assert.deepEqual(readdirSync(dir), ['run-ca.pem']);
});

test('a write the disk has no room for fails and leaves nothing behind, not even its temporary file', async () => {
  const mount = join(scratchDir('replace-file-'), 'disk');
  mkdirSync(mount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount]);
  try {
    const filler = openSync(join(mount, 'filler'), 'w');
    try {
      for (;;) writeSync(filler, Buffer.alloc(4096, 0x78));
    } catch {
      // the disk is full
    } finally {
      closeSync(filler);
    }
    await assert.rejects(replaceFile(join(mount, 'run-ca.pem'), 'x'.repeat(10_000), 0o644), {
      code: 'ENOSPC',
    });
    assert.deepEqual(readdirSync(mount), ['filler']);
  } finally {
    execFileSync('umount', ['-l', mount]);
  }
});
