import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { ReceiptChainBuilder } from '../../src/receipts/builder.js';
import { toHex } from '../../src/receipts/bytes.js';
import { parsePrivateKey, parsePublicKey } from '../../src/receipts/keys.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { RecorderWriter } from '../../src/receipts/recorder-writer.js';
import { cli } from './run-cli.js';
import { scratchDir } from '../scratch.js';

const backend = createNodeBackend();
const root = scratchDir('keygen-');
const FILES = ['signing-key.pem', 'public-key.pem', 'public-key.pipelock'];

test('keygen writes the key pair in every form, the signing key 0600, and prints the hex key', async () => {
  const out = path.join(root, 'keys');
  const { code, stdout } = await cli('keygen', '--out', out);
  assert.equal(code, 0);
  assert.match(stdout, /^[0-9a-f]{64}\n$/);
  const hex = stdout.trim();
  assert.equal(statSync(path.join(out, 'signing-key.pem')).mode & 0o777, 0o600);
  const signing = readFileSync(path.join(out, 'signing-key.pem'), 'utf8');
  assert.match(signing, /^-----BEGIN PRIVATE KEY-----\n/);
  const seed = parsePrivateKey(backend, signing);
  assert.ok(seed.ok);
  assert.equal(toHex(backend.ed25519PublicKey(seed.key)), hex);
  const pem = readFileSync(path.join(out, 'public-key.pem'), 'utf8');
  assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
  const pipelock = readFileSync(path.join(out, 'public-key.pipelock'), 'utf8');
  assert.match(pipelock, /^pipelock-ed25519-public-v1\n[A-Za-z0-9+/]{43}=\n$/);
  for (const text of [pem, pipelock]) {
    const parsed = parsePublicKey(text);
    assert.ok(parsed.ok);
    assert.equal(toHex(parsed.key), hex);
  }
});

test('a chain signed with the generated key verifies with public-key.pem, .pipelock and hex', async () => {
  const out = path.join(root, 'round-trip');
  const { stdout } = await cli('keygen', '--out', out);
  const seed = parsePrivateKey(backend, readFileSync(path.join(out, 'signing-key.pem'), 'utf8'));
  assert.ok(seed.ok);
  const builder = new ReceiptChainBuilder(backend, seed.key);
  const recorder = new RecorderWriter(backend, 'proxy', seed.key);
  let jsonl = '';
  for (let i = 0; i < 3; i++) {
    const built = builder.append({
      action_id: `a-${i}`,
      action_type: 'read',
      timestamp: `2026-11-26T22:00:0${i}Z`,
      principal: 'local',
      actor: 'agent',
      delegation_chain: null,
      target: 'https://example.test/',
      side_effect_class: 'external_read',
      reversibility: 'full',
      policy_hash: 'p',
      verdict: 'allow',
      transport: 'forward',
    });
    jsonl += recorder.appendReceipt(built, built.receipt.action_record.timestamp);
  }
  const evidence = path.join(out, 'evidence.jsonl');
  writeFileSync(evidence, jsonl);
  const keys = [
    path.join(out, 'public-key.pem'),
    path.join(out, 'public-key.pipelock'),
    stdout.trim(),
  ];
  for (const key of keys) {
    const verified = await cli('verify', '--receipt-chain', evidence, '--public-key', key);
    assert.equal(verified.code, 0, `${key}: ${verified.stdout}${verified.stderr}`);
    assert.match(verified.stdout, /^CHAIN VALID: /);
  }
});

test('keygen refuses to overwrite an existing key and leaves the files as they were', async () => {
  const out = path.join(root, 'twice');
  await cli('keygen', '--out', out);
  const before = FILES.map((name) => readFileSync(path.join(out, name), 'utf8'));
  const { code, stdout, stderr } = await cli('keygen', '--out', out);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /signing-key\.pem already exists; refusing to overwrite a key/);
  assert.deepEqual(
    FILES.map((name) => readFileSync(path.join(out, name), 'utf8')),
    before,
  );
});

test('when any of the files exists, keygen writes none of them', async () => {
  const out = path.join(root, 'partial');
  mkdirSync(out);
  writeFileSync(path.join(out, 'public-key.pipelock'), 'someone else\n');
  const { code, stderr } = await cli('keygen', '--out', out);
  assert.equal(code, 1);
  assert.match(stderr, /public-key\.pipelock already exists/);
  assert.equal(existsSync(path.join(out, 'signing-key.pem')), false);
  assert.equal(existsSync(path.join(out, 'public-key.pem')), false);
  assert.equal(readFileSync(path.join(out, 'public-key.pipelock'), 'utf8'), 'someone else\n');
});

test('keygen without --out, or with stray arguments, is a usage error', async () => {
  for (const argv of [['keygen'], ['keygen', root], ['keygen', '--out', root, '--force']]) {
    const { code, stderr } = await cli(...argv);
    assert.equal(code, 2, argv.join(' '));
    assert.match(stderr, /^pipelock-egress: keygen: /);
  }
});

test('keygen refuses a directory someone else could swap the keys in, and a path it cannot make', async () => {
  const foreign = path.join(root, 'foreign');
  mkdirSync(foreign);
  chownSync(foreign, 65534, 65534);
  const owned = await cli('keygen', '--out', foreign);
  assert.equal(owned.code, 1);
  assert.match(owned.stderr, /foreign belongs to uid 65534, who could swap the keys in it/);
  const open = path.join(root, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const shared = await cli('keygen', '--out', open);
  assert.equal(shared.code, 1);
  assert.match(shared.stderr, /open is writable by other users \(mode 777\)/);
  for (const dir of [foreign, open])
    for (const name of FILES) assert.ok(!existsSync(path.join(dir, name)), name);
  // Node's own recursive mkdir never returns for this path.
  const proc = await cli('keygen', '--out', '/proc/pipelock-egress-nope/keys');
  assert.equal(proc.code, 1);
  assert.match(proc.stderr, /cannot write keys to \/proc\/pipelock-egress-nope\/keys: ENOENT/);
});

test('keygen names a dangling link or a file where its directory would be', async () => {
  const dangling = path.join(root, 'dangling');
  symlinkSync(path.join(root, 'gone'), dangling);
  for (const out of [dangling, path.join(dangling, 'keys')]) {
    const result = await cli('keygen', '--out', out);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /dangling is a symbolic link to .*gone, which does not exist; make its target or give another path/,
    );
  }
  const file = path.join(root, 'plain-file');
  writeFileSync(file, '');
  const under = await cli('keygen', '--out', path.join(file, 'keys'));
  assert.equal(under.code, 1);
  assert.match(under.stderr, /plain-file is not a directory; give a directory path/);
  assert.ok(!existsSync(path.join(root, 'gone')));
});
