import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSystemCaBundle } from '../../src/cli/upstream-ca.js';
import { scratchDir } from '../scratch.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('the system CA bundle is the first of the known places that is a regular file, as the boundary picks it', async () => {
  const dir = scratchDir('pe-system-ca-');
  writeFileSync(join(dir, 'bundle.pem'), PEM);
  writeFileSync(join(dir, 'later.pem'), 'not this one');
  mkdirSync(join(dir, 'a-directory'));
  execFileSync('mkfifo', [join(dir, 'a-fifo')]);
  symlinkSync('/dev/zero', join(dir, 'a-device'));
  // Never read for ever: a FIFO, a device, a directory are no bundle and are passed over.
  const skipped = ['missing.pem', 'bundle.pem/under-a-file', 'a-directory', 'a-fifo', 'a-device'];
  assert.deepEqual(
    await readSystemCaBundle([...skipped, 'bundle.pem', 'later.pem'].map((f) => join(dir, f))),
    { ok: true, pem: PEM },
  );
  assert.equal(await readSystemCaBundle(skipped.map((f) => join(dir, f))), undefined);
});

test('a system CA bundle too big to be one stops the start, naming it', async () => {
  const dir = scratchDir('pe-system-ca-');
  const big = join(dir, 'ca-certificates.crt');
  execFileSync('truncate', ['-s', String(16 * 1024 * 1024 + 1), big]);
  const read = await readSystemCaBundle([big]);
  assert.equal(read?.ok, false);
  assert.match(
    read.ok ? '' : read.problem,
    /^cannot read the system CA bundle .*ca-certificates\.crt, which upstream TLS trusts: it is over 16777216 bytes$/,
  );
});
