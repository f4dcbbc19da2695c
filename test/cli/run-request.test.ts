import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/io.js';
import { parseRunRequest, RunRequestError } from '../../src/cli/run-request.js';
import { encodePrivateKeyPem, publicKeyHex } from '../../src/receipts/keys.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { scratchDir } from '../scratch.js';
import { quietIo } from './run-cli.js';

// parseRunRequest only reads: nothing on the machine changes, whatever it is given.
const dir = scratchDir('run-request-');
writeFileSync(join(dir, 'policy.yaml'), 'version: "1.0"\negress:\n  - destination: "a.test"\n');
writeFileSync(join(dir, 'agent.sh'), 'true\n');

/** `run` of agent.sh under policy.yaml, in `dir`, with these options. */
function runWith(...options: string[]) {
  return parseRunRequest(
    ['--policy', join(dir, 'policy.yaml'), ...options, '--', 'agent.sh'],
    quietIo,
    createNodeBackend(),
    dir,
  );
}

const runWithPins = (...pins: string[]) => runWith(...pins.flatMap((pin) => ['--resolve', pin]));

async function assertUsageError(request: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(request, (error: Error) => {
    assert.ok(error instanceof UsageError, error.message);
    assert.match(error.message, message);
    return true;
  });
}

test('run --resolve: a pin is checked as the proxy checks it', async () => {
  assert.deepEqual((await runWithPins('a.test:127.0.0.1')).pins, ['a.test:127.0.0.1']);
  await assertUsageError(
    runWithPins('a.test:127.1'),
    /^run: --resolve "127\.1" is read as the IPv4 address 127\.0\.0\.1 .*; write the address in dotted decimal, "127\.0\.0\.1" or the one you meant$/,
  );
});

test('run --resolve: one name pinned to two addresses is a usage error naming both', async () => {
  await assertUsageError(
    runWithPins('a.test:127.0.0.1', 'a.test:127.0.0.2'),
    /^run: --resolve a\.test:127\.0\.0\.1 and a\.test:127\.0\.0\.2 pin a\.test to two addresses; keep the one you mean$/,
  );
});

test('run: a --public-key that does not belong to --signing-key is not printed (it may be the seed); the signer is named', async () => {
  const backend = createNodeBackend();
  const seed = backend.sha256(new TextEncoder().encode('run-request signing key'));
  const signingKey = join(dir, 'signing-key.pem');
  writeFileSync(signingKey, encodePrivateKeyPem(seed), { mode: 0o600 });
  const seedHex = Buffer.from(seed).toString('hex');
  await assert.rejects(runWith('--signing-key', signingKey, '--public-key', seedHex), (error) => {
    assert.ok(error instanceof RunRequestError);
    assert.ok(!error.message.includes(seedHex), error.message);
    assert.deepEqual(error.problems, [
      `--public-key (not shown: it may be a secret key) is not the public key of --signing-key, ${publicKeyHex(backend.ed25519PublicKey(seed))}; the run could never verify as valid`,
    ]);
    return true;
  });
});
