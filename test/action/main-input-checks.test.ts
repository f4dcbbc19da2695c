// The main step's checks of the inputs it reads from files (the keys, the policy): each bad
// input stops the step with a message naming it, before anything started. These tests never
// start the boundary (checksOnlyRunner), so they run anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runMain } from '../../src/action/main.js';
import type { RawInputs } from '../../src/action/input-names.js';
import { MAX_KEY_FILE_BYTES } from '../../src/cli/key-argument.js';
import { MAX_POLICY_BYTES } from '../../src/policy/index.js';
import {
  encodePipelockPrivateKey,
  encodePrivateKeyPem,
  encodePublicKeyPem,
  publicKeyHex,
} from '../../src/receipts/index.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { ABOUT_TO_START, checksOnlyRunner, workspace, type Recorded } from './helpers.js';

const backend = createNodeBackend();
// Bigger than Node reads into one buffer: a reader without a bound fails or exhausts memory.
const HUGE = 3 * 1024 ** 3;

function keyPair(): { seed: Uint8Array; publicKey: Uint8Array } {
  const seed = new Uint8Array(randomBytes(32));
  return { seed, publicKey: backend.ed25519PublicKey(seed) };
}

/** Runs main's checks in `dir`; the step's one failure, which must come before the run. */
async function refusal(
  dir: string,
  inputs: Partial<RawInputs>,
): Promise<{ message: string; recorded: Recorded }> {
  const runner = checksOnlyRunner({
    'working-directory': dir,
    'agent-script': 'scripts/agent.sh',
    'policy-config': 'policy.yaml',
    ...inputs,
  });
  await runMain(runner);
  const [message = '', ...more] = runner.recorded.failures;
  assert.deepEqual(more, []);
  assert.notEqual(message, ABOUT_TO_START, 'the checks let the input through to the run');
  const heading = 'invalid inputs; nothing was started:\n';
  startsWith(message, heading);
  return { message: message.slice(heading.length), recorded: runner.recorded };
}

function startsWith(message: string, expected: string): void {
  assert.ok(message.startsWith(expected), `expected to start with\n${expected}\ngot\n${message}`);
}

test('a key input naming a file that does not exist is an error naming it, not an inline key', async () => {
  const dir = await workspace();
  const signing = await refusal(dir, { 'signing-key': 'keys/agent.key' });
  startsWith(
    signing.message,
    `input signing-key: "keys/agent.key" is neither an existing file (looked for ${dir}/keys/agent.key) nor a key (PEM PKCS#8, pipelock-ed25519-private-v1 text or 64 hex characters): not a private key`,
  );
  const pinned = await refusal(dir, {
    'signing-key': encodePrivateKeyPem(keyPair().seed),
    'public-key': './keys/public-key.pem',
  });
  startsWith(
    pinned.message,
    `input public-key: "./keys/public-key.pem" is neither an existing file (looked for ${dir}/keys/public-key.pem) nor a key (PEM SPKI, pipelock-ed25519-public-v1 text or 64 hex characters): not a public key`,
  );
});

test('a malformed inline signing key is refused without any of it in the log', async () => {
  const dir = await workspace();
  const { seed } = keyPair();
  const malformed = [
    // Valid base64, but not an Ed25519 PKCS#8 key.
    `-----BEGIN PRIVATE KEY-----\n${randomBytes(48).toString('base64')}\n-----END PRIVATE KEY-----\n`,
    // Pipelock's form with the public half cut off.
    encodePipelockPrivateKey(backend, seed).slice(0, 60),
    // One hex digit short.
    Buffer.from(seed).toString('hex').slice(1),
    // A bare base64 seed: one line with a slash, like a path.
    `ab/+${Buffer.from(seed).toString('base64')}`,
  ];
  for (const key of malformed) {
    const { message, recorded } = await refusal(dir, { 'signing-key': key });
    startsWith(
      message,
      `input signing-key: the value (not shown: it may be a secret key) is neither an existing file (a path is taken relative to ${dir}) nor a key (`,
    );
    const printed = [...recorded.failures, ...recorded.infos, ...Object.values(recorded.outputs)];
    // The key material: every line but PEM's armour and Pipelock's header, which are public.
    const material = key
      .split('\n')
      .filter((line) => line !== '' && !/^(-----|pipelock-)/.test(line));
    for (const part of material)
      assert.ok(!printed.some((text) => text.includes(part)), `printed: ${part}`);
  }
});

test('a directory or a FIFO given as a key file is refused as not a regular file, at once', async () => {
  const dir = await workspace();
  await mkdir(join(dir, 'keys'));
  execFileSync('mkfifo', [join(dir, 'keys/agent.key'), join(dir, 'keys/public.pem')]);
  const notRegular = 'not a regular file; give the path of a key file, or the key itself';
  const directory = await refusal(dir, { 'signing-key': 'keys' });
  assert.equal(directory.message, `input signing-key: ${dir}/keys: ${notRegular}`);
  const fifo = await refusal(dir, { 'signing-key': 'keys/agent.key' });
  assert.equal(fifo.message, `input signing-key: ${dir}/keys/agent.key: ${notRegular}`);
  const publicFifo = await refusal(dir, {
    'signing-key': encodePrivateKeyPem(keyPair().seed),
    'public-key': 'keys/public.pem',
  });
  assert.equal(publicFifo.message, `input public-key: ${dir}/keys/public.pem: ${notRegular}`);
});

test('a key file over 64 KiB is refused, without reading it whole', async () => {
  const dir = await workspace();
  await mkdir(join(dir, 'keys'));
  // A valid key padded with spaces, which a reader without the bound would accept.
  const padded = join(dir, 'keys/padded.pem');
  await writeFile(padded, encodePrivateKeyPem(keyPair().seed).padEnd(MAX_KEY_FILE_BYTES + 1));
  const huge = join(dir, 'keys/huge.pem');
  await writeFile(huge, '');
  await truncate(huge, HUGE);
  for (const file of [padded, huge]) {
    const { message } = await refusal(dir, { 'signing-key': file });
    assert.equal(
      message,
      `input signing-key: ${file}: more than ${MAX_KEY_FILE_BYTES} bytes, too big for a key file`,
    );
  }
});

test("a public-key that is not the signing key's public half is refused, naming the signer's (a key given as public-key is never printed: it may be a secret one)", async () => {
  const dir = await workspace();
  const signer = keyPair();
  const other = keyPair();
  await writeFile(join(dir, 'public-key.pem'), encodePublicKeyPem(other.publicKey));
  const signingKey = encodePrivateKeyPem(signer.seed);
  const { message, recorded } = await refusal(dir, {
    'signing-key': signingKey,
    'public-key': 'public-key.pem',
  });
  assert.equal(
    message,
    `input public-key (not shown: it may be a secret key) is not the public key of signing-key, ${publicKeyHex(signer.publicKey)}; the run could never verify as valid`,
  );
  assert.ok(!JSON.stringify(recorded).includes(publicKeyHex(other.publicKey)));
  const body = signingKey.split('\n')[1] ?? '';
  assert.ok(!JSON.stringify(recorded).includes(body), 'the signing key is not printed');
});

test('a policy-config that is a FIFO is refused at once, naming the input', async () => {
  const dir = await workspace();
  execFileSync('mkfifo', [join(dir, 'policy.fifo')]);
  const { message } = await refusal(dir, { 'policy-config': 'policy.fifo' });
  startsWith(message, `input policy-config: ${dir}/policy.fifo`);
  assert.match(message, /not a regular file/);
});

test('a policy-config over 1 MiB is refused as too large, without reading it whole', async () => {
  const dir = await workspace();
  const over = join(dir, 'over.yaml');
  await writeFile(over, Buffer.alloc(MAX_POLICY_BYTES + 1, 0x20));
  const huge = join(dir, 'huge.yaml');
  await writeFile(huge, '');
  await truncate(huge, HUGE);
  for (const name of ['over.yaml', 'huge.yaml']) {
    const { message } = await refusal(dir, { 'policy-config': name });
    assert.equal(
      message,
      `input policy-config: the policy is invalid:\n${name}:1:1: the file has more than ${MAX_POLICY_BYTES} bytes; a policy may have at most ${MAX_POLICY_BYTES}`,
    );
  }
});

test('valid keys pass the checks: a key file, inline keys in each form, a matching public key', async () => {
  const dir = await workspace();
  const { seed, publicKey } = keyPair();
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys/signing-key.pem'), encodePrivateKeyPem(seed), { mode: 0o600 });
  await writeFile(join(dir, 'keys/public-key.pem'), encodePublicKeyPem(publicKey));
  const pairs: Partial<RawInputs>[] = [
    { 'signing-key': 'keys/signing-key.pem', 'public-key': publicKeyHex(publicKey) },
    { 'signing-key': encodePipelockPrivateKey(backend, seed), 'public-key': 'keys/public-key.pem' },
    { 'signing-key': Buffer.from(seed).toString('hex') },
  ];
  for (const keys of pairs) {
    const runner = checksOnlyRunner({
      'working-directory': dir,
      'agent-script': 'scripts/agent.sh',
      'policy-config': 'policy.yaml',
      ...keys,
    });
    await runMain(runner);
    assert.deepEqual(runner.recorded.failures, [ABOUT_TO_START]);
  }
});
