import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkKeyInputs } from '../../src/action/key-inputs.js';
import {
  encodePipelockPublicKey,
  encodePrivateKeyPem,
  publicKeyHex,
} from '../../src/receipts/index.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { scratchDir } from '../scratch.js';

const backend = createNodeBackend();

test('a key file is passed on as its path (the boundary hides it), an inline key as itself', async () => {
  const dir = scratchDir('pe-key-inputs-');
  const seed = new Uint8Array(randomBytes(32));
  const publicKey = backend.ed25519PublicKey(seed);
  await writeFile(join(dir, 'signing-key.pem'), encodePrivateKeyPem(seed), { mode: 0o600 });
  await writeFile(join(dir, 'public-key.pipelock'), encodePipelockPublicKey(publicKey));

  const fromFiles = await checkKeyInputs(
    { signing: 'signing-key.pem', publicKey: 'public-key.pipelock' },
    dir,
    backend,
  );
  assert.deepEqual(fromFiles, {
    signing: { file: join(dir, 'signing-key.pem') },
    publicKey: publicKeyHex(publicKey),
  });

  const inline = encodePrivateKeyPem(seed);
  const fromValues = await checkKeyInputs(
    { signing: inline, publicKey: encodePipelockPublicKey(publicKey) },
    dir,
    backend,
  );
  assert.deepEqual(fromValues, { signing: { inline }, publicKey: publicKeyHex(publicKey) });

  assert.deepEqual(
    await checkKeyInputs({ signing: undefined, publicKey: undefined }, dir, backend),
    {
      signing: undefined,
      publicKey: undefined,
    },
  );
});
