// Rotating the signing key the way the README's "Rotating the signing key" says: a new pair
// from keygen, the old public key kept under keys/retired. Each packet verifies with the key
// that signed it; a reviewer passing every key the repository holds verifies old and new
// packets alike and is told which key signed; the new key alone vouches for nothing the old
// one signed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../cli/run-cli.js';
import { scratchDir } from '../scratch.js';
import { writeSamplePacket } from './packet-fixture.js';
import { parsePrivateKey } from '../../src/receipts/keys.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';

const backend = createNodeBackend();

/** A key pair from `keygen --out DIR`: its signing seed and its hex public key. */
async function keygen(dir: string): Promise<{ seed: Uint8Array; hex: string }> {
  const { code, stdout, stderr } = await cli('keygen', '--out', dir);
  assert.equal(code, 0, stderr);
  const parsed = parsePrivateKey(backend, readFileSync(join(dir, 'signing-key.pem'), 'utf8'));
  assert.ok(parsed.ok);
  return { seed: parsed.key, hex: stdout.trim() };
}

test('after a rotation, old and new packets each verify with the key that signed them, and only with it', async () => {
  const work = scratchDir('pe-rotation-');
  const repo = join(work, 'repo');
  mkdirSync(join(repo, 'keys', 'retired'), { recursive: true });
  const current = join(repo, 'keys', 'pipelock-ci-pub.pem');

  const before = await keygen(join(work, 'first-keys'));
  copyFileSync(join(work, 'first-keys', 'public-key.pem'), current);
  const oldPacket = join(work, 'old-packet');
  await writeSamplePacket(oldPacket, 5, { seed: before.seed });

  // The rotation: a new pair, the old public key retired beside the new one.
  const after = await keygen(join(work, 'next-keys'));
  const retired = join(repo, 'keys', 'retired', 'pipelock-ci-pub-2026-11.pem');
  renameSync(current, retired);
  copyFileSync(join(work, 'next-keys', 'public-key.pem'), current);
  const newPacket = join(work, 'new-packet');
  await writeSamplePacket(newPacket, 5, { seed: after.seed });

  const every = ['--public-key', current, '--public-key', retired];
  for (const [packet, signer] of [
    [oldPacket, before.hex],
    [newPacket, after.hex],
  ] as const) {
    const { code, stdout, stderr } = await cli('verify', '--packet', packet, ...every);
    assert.equal(code, 0, stdout + stderr);
    assert.match(stdout, new RegExp(`\\n {2}Signer: {4}${signer}\\n`));
    assert.match(stdout, /\nPACKET VALID: /);
  }
  const withNewOnly = await cli('verify', '--packet', oldPacket, '--public-key', current);
  assert.equal(withNewOnly.code, 1);
  assert.match(withNewOnly.stdout, /^CHAIN BROKEN: /);
  assert.match(withNewOnly.stdout, /\nPACKET INVALID: /);
  assert.match(
    withNewOnly.stdout,
    new RegExp(`signer_key ${before.hex} does not match the pinned key \\(1 given; not shown`),
  );
  const withOldOnly = await cli('verify', '--packet', newPacket, '--public-key', retired);
  assert.equal(withOldOnly.code, 1);
  assert.match(withOldOnly.stdout, /\nPACKET INVALID: /);
});
