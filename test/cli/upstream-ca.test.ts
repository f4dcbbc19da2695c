import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSystemCaBundle } from '../../src/cli/upstream-ca.js';
import type { CliIo } from '../../src/cli/io.js';
import { scratchDir } from '../scratch.js';

const io: CliIo = { out: () => undefined, err: () => undefined, readFile };
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('the system CA bundle is the first of the known places that exists', async () => {
  const dir = scratchDir('pe-system-ca-');
  writeFileSync(join(dir, 'second.pem'), PEM);
  writeFileSync(join(dir, 'third.pem'), 'not this one');
  const missing = [join(dir, 'missing.pem'), join(dir, 'second.pem', 'under-a-file.pem')];
  assert.deepEqual(
    await readSystemCaBundle(io, [...missing, join(dir, 'second.pem'), join(dir, 'third.pem')]),
    { ok: true, pem: PEM },
  );
  assert.equal(await readSystemCaBundle(io, missing), undefined);
});

test('a system CA bundle that is there but cannot be read stops the start, naming it', async () => {
  const dir = scratchDir('pe-system-ca-');
  const notAFile = join(dir, 'ca-certificates.crt');
  mkdirSync(notAFile);
  const read = await readSystemCaBundle(io, [notAFile, join(dir, 'other.pem')]);
  assert.equal(read?.ok, false);
  assert.match(
    read.ok ? '' : read.problem,
    /^cannot read the system CA bundle .*ca-certificates\.crt, which upstream TLS trusts: EISDIR/,
  );
});
