import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import {
  encodePipelockPrivateKey,
  encodePipelockPublicKey,
  encodePrivateKeyPem,
  encodePublicKeyPem,
} from '../../src/receipts/keys.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { fromHex } from '../../src/receipts/bytes.js';
import { SAMPLE_KEY, SAMPLE_POLICY_HASH, sampleEvidence } from '../receipts/sample-evidence.js';
import { KEY_A, VECTORS_DIR } from '../receipts/vectors.js';
import { cli } from './run-cli.js';
import { scratchDir } from '../scratch.js';

const dir = scratchDir('verify-');
const sample = [...sampleEvidence(20)];
const sampleFile = path.join(dir, 'evidence.jsonl');
writeFileSync(sampleFile, sample.map((l) => l.text).join(''));
const vector = (name: string) => path.join(VECTORS_DIR, name);
const KEY_B = '970955695494cf0fb3109671e673ecaeb0a161e834861a325b97b0656e3c9cd1';

/** `verify` of the sample evidence with `keys` pinned, and more options. */
const verifySamplePinning = (keys: readonly string[], ...options: string[]) =>
  cli(
    'verify',
    '--receipt-chain',
    sampleFile,
    ...keys.flatMap((key) => ['--public-key', key]),
    ...options,
  );

/** `verify` of the sample evidence under its key, with more options. */
const verifySample = (...options: string[]) => verifySamplePinning([SAMPLE_KEY], ...options);

/** `verify` of another evidence file under the sample key. */
const verifyUnderSampleKey = (path: string) =>
  cli('verify', '--receipt-chain', path, '--public-key', SAMPLE_KEY);

function file(name: string, content: string): string {
  const target = path.join(dir, name);
  writeFileSync(target, content);
  return target;
}

function report(target: string): Record<string, unknown> {
  return JSON.parse(readFileSync(target, 'utf8')) as Record<string, unknown>;
}

test('an evidence .jsonl verifies: CHAIN VALID in Pipelock layout plus Sealed, exit 0', async () => {
  const { code, stdout, stderr } = await verifySample();
  assert.equal(code, 0, stderr);
  const lines = stdout.split('\n');
  assert.equal(lines[0], `CHAIN VALID: ${sampleFile}`);
  assert.equal(lines[1], '  Receipts:  22');
  assert.equal(lines[2], '  Final seq: 21');
  assert.match(lines[3] ?? '', /^ {2}Root hash: [0-9a-f]{64}$/);
  assert.equal(lines[4], '  Start:     2026-11-26T22:00:00Z');
  assert.equal(lines[5], '  End:       2026-11-26T22:00:00.147Z');
  assert.equal(lines[6], `  Signer:    ${SAMPLE_KEY}`);
  assert.equal(lines[7], '  Sealed:    yes');
});

test('a receipts.json array verifies like the evidence it came from', async () => {
  const receipts = sample.flatMap((l) => (l.receipt ? [l.receipt.json] : []));
  const array = file('receipts.json', `[\n${receipts.join(',\n')}\n]\n`);
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    array,
    '--public-key',
    SAMPLE_KEY,
  );
  assert.equal(code, 0, stdout);
  assert.match(stdout, /^CHAIN VALID: .*receipts\.json\n {2}Receipts: {2}22\n/);
});

test('a directory of evidence-<session>-<seq>.jsonl shards verifies in numeric order', async () => {
  const shards = path.join(dir, 'shards');
  mkdirSync(shards);
  const text = sample.map((l) => l.text);
  // 9 sorts after 10 as text: only numeric order rebuilds the chain.
  writeFileSync(path.join(shards, 'evidence-proxy-0.jsonl'), text.slice(0, 9).join(''));
  writeFileSync(path.join(shards, 'evidence-proxy-9.jsonl'), text.slice(9, 10).join(''));
  writeFileSync(path.join(shards, 'evidence-proxy-10.jsonl'), text.slice(10).join(''));
  writeFileSync(path.join(shards, 'evidence-other-0.jsonl'), 'not evidence\n');
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    shards,
    '--public-key',
    SAMPLE_KEY,
    '--whole-recorder',
  );
  assert.equal(code, 0, stdout);
  assert.match(
    stdout,
    new RegExp(`^CHAIN VALID: ${shards} \\(session proxy\\)\\n {2}Receipts: {2}22\\n`),
  );
  const other = await cli(
    'verify',
    '--receipt-chain',
    shards,
    '--session-id',
    'nobody',
    '--public-key',
    SAMPLE_KEY,
  );
  assert.equal(other.code, 1);
  assert.equal(other.stdout, `No receipts found in ${shards} (session nobody)\n`);
});

test('one receipt JSON (pretty-printed) verifies', async () => {
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    vector('valid-single.json'),
    '--public-key',
    KEY_A,
  );
  assert.equal(code, 0, stdout);
  assert.match(
    stdout,
    /^CHAIN VALID: .*valid-single\.json\n {2}Receipts: {2}1\n {2}Final seq: 0\n/,
  );
  assert.match(stdout, /\n {2}Sealed: {4}no\n$/);
});

test('without a pinned key the chain is only self-consistent: exit 1 unless --allow-unpinned', async () => {
  const output = path.join(dir, 'unpinned', 'verification-report.json');
  const strict = await cli('verify', '--receipt-chain', sampleFile, '--output', output);
  assert.equal(strict.code, 1);
  assert.match(strict.stdout, /^CHAIN UNPINNED: /);
  assert.match(strict.stderr, /no --public-key given.*--allow-unpinned/);
  assert.equal(report(output)['verdict'], 'self_consistent_only');
  assert.equal(report(output)['trusted'], false);
  const allowed = await cli(
    'verify',
    '--receipt-chain',
    sampleFile,
    '--allow-unpinned',
    '--output',
    output,
  );
  assert.equal(allowed.code, 0);
  assert.match(allowed.stdout, /^CHAIN UNPINNED: /);
  assert.equal(report(output)['verdict'], 'self_consistent_only');
});

test('a chain signed by another key than the pinned one is broken', async () => {
  // An inline PEM whose base64 holds "/" is still a key, not a missing file.
  const other = encodePublicKeyPem(new Uint8Array(32).fill(0xff));
  assert.match(other, /\//);
  for (const key of [KEY_A, other]) {
    const { code, stdout } = await verifySamplePinning([key]);
    assert.equal(code, 1, stdout);
    assert.match(
      stdout,
      /^CHAIN BROKEN: .*\n {2}Error: {4}seq 0: signer_key [0-9a-f]{64} does not match the pinned key \(1 given; not shown: it may be a secret key\)\n/,
    );
    assert.match(stdout, /\n {2}Broke at: seq 0\n {2}Sealed: {3}no\n$/);
  }
});

test('a private seed given as --public-key is not printed: the error counts the pinned keys and names the signer', async () => {
  // 64 hex characters read as a public key, whatever they are.
  const seed = 'c0ffee'.repeat(10) + 'c0de';
  const output = path.join(dir, 'seed-report.json');
  for (const pinned of [[seed], [file('seed.hex', `${seed}\n`)], [seed, KEY_A]]) {
    const { code, stdout, stderr } = await verifySamplePinning(pinned, '--output', output);
    assert.equal(code, 1, stdout);
    const reported = readFileSync(output, 'utf8');
    for (const text of [stdout, stderr, reported]) assert.ok(!text.includes(seed), text);
    assert.match(
      stdout,
      pinned.length === 1
        ? new RegExp(
            `Error: {4}seq 0: signer_key ${SAMPLE_KEY} does not match the pinned key \\(1 given; not shown: it may be a secret key\\)\n`,
          )
        : new RegExp(
            `Error: {4}seq 0: signer key ${SAMPLE_KEY} is not in the trusted set \\(2 pinned keys given; not shown: one may be a secret key\\)\n`,
          ),
    );
  }
});

test('a private key given as --public-key is named as one, not printed (exit 2)', async () => {
  const seed = fromHex('5eed'.repeat(16)) ?? new Uint8Array();
  const pem = encodePrivateKeyPem(seed);
  const pipelock = encodePipelockPrivateKey(createNodeBackend(), seed);
  for (const [key, text] of [
    [pem, pem],
    [file('signing-key.pem', pem), pem],
    [file('signing-key.pipelock', pipelock), pipelock],
  ] as const) {
    const { code, stdout, stderr } = await verifySamplePinning([key]);
    assert.equal(code, 2, stderr);
    assert.equal(stdout, '');
    assert.match(
      stderr,
      /: a private key where the public key is needed: give its public key instead \(keygen writes it beside signing-key\.pem as public-key\.pem\)\n$/,
    );
    const base64 = text.split('\n')[1] ?? '';
    assert.ok(base64.length > 40 && !stderr.includes(base64), stderr);
  }
});

test('the key may be PEM, Pipelock text or hex, in a file or inline', async () => {
  const raw = fromHex(SAMPLE_KEY) ?? new Uint8Array();
  const forms = [
    file('key.pem', encodePublicKeyPem(raw)),
    file('key.pipelock', encodePipelockPublicKey(raw)),
    file('key.hex', `${SAMPLE_KEY}\n`),
    SAMPLE_KEY,
    SAMPLE_KEY.toUpperCase(),
    encodePublicKeyPem(raw),
  ];
  for (const key of forms) {
    const { code, stdout, stderr } = await verifySamplePinning([key]);
    assert.equal(code, 0, `${key}: ${stderr}`);
    assert.match(stdout, /^CHAIN VALID: /);
  }
});

test('a key that cannot be read or parsed is an input error (exit 2), reported as error', async () => {
  const output = path.join(dir, 'bad-key-report.json');
  for (const key of [
    './missing.pem',
    path.join(dir, 'missing.pipelock'),
    'not-a-key',
    file('junk.pem', 'junk\n'),
  ]) {
    const { code, stderr } = await verifySamplePinning([key], '--output', output);
    assert.equal(code, 2, key);
    assert.match(stderr, /^pipelock-egress verify: .*(not found|not a public key)/, key);
    assert.equal(report(output)['verdict'], 'error');
  }
});

test('a key path to a FIFO, a directory or a file of gigabytes is refused at once, unread', async () => {
  const fifo = path.join(dir, 'key.fifo');
  execFileSync('mkfifo', [fifo]);
  const huge = file('huge.pem', '');
  // Sparse: gigabytes long without taking the disk; read whole, it would exhaust memory.
  truncateSync(huge, 3 * 1024 ** 3);
  const cases: [string, RegExp][] = [
    [fifo, /: not a regular file; give the path of a key file, or the key itself$/m],
    [dir, /: not a regular file; give the path of a key file, or the key itself$/m],
    [huge, /: more than 65536 bytes, too big for a key file$/m],
  ];
  for (const [key, expected] of cases) {
    const { code, stderr } = await verifySamplePinning([key]);
    assert.equal(code, 2, key);
    assert.ok(stderr.startsWith(`pipelock-egress verify: public key: ${key}: `), stderr);
    assert.match(stderr, expected);
  }
});

test('--policy-hash: every receipt must carry the hash in the file', async () => {
  const output = path.join(dir, 'policy-report.json');
  const good = file('policy-hash.txt', `${SAMPLE_POLICY_HASH}\n`);
  const match = await verifySample('--policy-hash', good, '--output', output);
  assert.equal(match.code, 0, match.stdout);
  assert.equal(report(output)['policy_hash_match'], true);
  const other = file('other-hash.txt', `${'0'.repeat(64)}\n`);
  const mismatch = await verifySample('--policy-hash', other, '--output', output);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stdout, /^CHAIN VALID: /);
  assert.match(
    mismatch.stdout,
    new RegExp(
      `\\nPOLICY MISMATCH: receipts carry policy_hash ${SAMPLE_POLICY_HASH}; expected ${'0'.repeat(64)}\\n$`,
    ),
  );
  assert.equal(report(output)['verdict'], 'invalid');
  assert.equal(report(output)['policy_hash_match'], false);
  const missing = await verifySample('--policy-hash', path.join(dir, 'nope.txt'));
  assert.equal(missing.code, 2);
  const policy = file('policy.yaml', 'version: "1.0"\negress:\n  - destination: "a.test"\n');
  const mistaken = await verifySample('--policy-hash', policy);
  assert.equal(mistaken.code, 2);
  assert.equal(mistaken.stdout, '');
  assert.match(
    mistaken.stderr,
    /policy\.yaml holds 3 lines, not one hash; expected the policy's SHA-256 as 64 hex digits/,
  );
});

test('--policy-hash: the line sha256sum prints for the policy is its hash, and so is sha256:HASH', async () => {
  for (const line of [
    `${SAMPLE_POLICY_HASH}  policy.yaml\n`,
    `${SAMPLE_POLICY_HASH} *policy.yaml\n`,
    `${SAMPLE_POLICY_HASH}  -`,
    // As Pipelock's receipts may write it.
    `sha256:${SAMPLE_POLICY_HASH}\n`,
  ]) {
    const { code, stdout } = await verifySample('--policy-hash', file('sha256sum.txt', line));
    assert.equal(code, 0, `${line}: ${stdout}`);
    assert.doesNotMatch(stdout, /POLICY MISMATCH/);
  }
});

test('--policy-hash: a file that holds no SHA-256 is a usage error naming what it holds, not a mismatch', async () => {
  const output = path.join(dir, 'malformed-hash-report.json');
  const hash = SAMPLE_POLICY_HASH;
  for (const [content, problem] of [
    ['', 'is empty'],
    [`sha256:${hash.slice(1)}\n`, 'holds "sha256:" and then no 64 hex digits'],
    [`${hash.slice(1)}\n`, 'holds 63 hex digits where a SHA-256 has 64'],
    [`${hash.slice(1)}  policy.yaml\n`, 'holds 63 hex digits where a SHA-256 has 64'],
    [`${hash}0\n`, 'holds 65 hex digits where a SHA-256 has 64'],
    [`${hash.slice(0, 9)}g${hash.slice(10)}\n`, 'has "g" at column 10, not a hex digit'],
    [` ${hash}\n`, 'has " " at column 1, not a hex digit'],
    [
      `${hash} policy.yaml\n`,
      'has " " after the hash (column 65), where sha256sum writes two spaces (or " *") and the file name',
    ],
    [`${hash}\t\n`, 'has "\\u0009" after the hash (column 65)'],
    [`${hash}\n\n`, 'holds 2 lines, not one hash'],
  ] as const) {
    const given = file('malformed-hash.txt', content);
    const { code, stdout, stderr } = await verifySample('--policy-hash', given, '--output', output);
    assert.equal(code, 2, `${JSON.stringify(content)}: ${stdout}`);
    assert.equal(stdout, '');
    assert.ok(
      stderr.startsWith(`pipelock-egress verify: policy hash file ${given} ${problem}`),
      `${JSON.stringify(content)}: ${stderr}`,
    );
    assert.match(
      stderr,
      /; expected the policy's SHA-256 as 64 hex digits alone on one line \(as policy-hash\.txt holds it, with or without sha256:\), or the line sha256sum POLICY prints\n$/,
    );
    assert.equal(report(output)['verdict'], 'error');
  }
});

test("--policy-hash: a chain of Pipelock's that writes the hash as sha256:HEX carries that hash", async () => {
  const emptyPolicy = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    vector('valid-chain.jsonl'),
    '--public-key',
    KEY_A,
    '--policy-hash',
    file('empty-policy-hash.txt', `${emptyPolicy}\n`),
  );
  assert.equal(code, 0, stdout);
  assert.doesNotMatch(stdout, /POLICY MISMATCH/);
});

test('--policy-hash: a SHA-256 in upper-case hex (PowerShell Get-FileHash) is the same hash', async () => {
  const output = path.join(dir, 'upper-report.json');
  const upper = file('upper-hash.txt', `${SAMPLE_POLICY_HASH.toUpperCase()}\r\n`);
  const { code, stdout } = await verifySample('--policy-hash', upper, '--output', output);
  assert.equal(code, 0, stdout);
  assert.doesNotMatch(stdout, /POLICY MISMATCH/);
  assert.equal(report(output)['policy_hash_match'], true);
});

test('rotation endorsements authorise a new key under the pinned root key', async () => {
  const chain = vector('g1-rotated-close-count-valid.jsonl');
  const endorsement = vector('g1-rotation-endorsement.json');
  const session = ['--session-id', 'conformance-session'];
  const endorsed = await cli(
    'verify',
    '--receipt-chain',
    chain,
    '--public-key',
    KEY_A,
    '--rotation-endorsement',
    endorsement,
    ...session,
  );
  assert.equal(endorsed.code, 0, endorsed.stdout);
  assert.match(
    endorsed.stdout,
    /Root hash: f41965657ef61c3f7fb79cd850fd8d80b4ab3d6752ccaf26675ab1c05a6ac066\n/,
  );
  assert.match(
    endorsed.stdout,
    /\n {2}Segments: {2}2 \(signing key rotated\)\n {4}segment 1: seq 0-2 {2}signer 4655a7e6[0-9a-f]{56}\n {4}segment 2: seq 0-2 {2}signer 97095569[0-9a-f]{56} {2}\(key rotation\)\n/,
  );
  const bothPinned = await cli(
    'verify',
    '--receipt-chain',
    chain,
    '--public-key',
    KEY_A,
    '--public-key',
    KEY_B,
  );
  assert.equal(bothPinned.code, 0, bothPinned.stdout);
  const unendorsed = await cli('verify', '--receipt-chain', chain, '--public-key', KEY_A);
  assert.equal(unendorsed.code, 1);
  assert.match(unendorsed.stdout, /^CHAIN BROKEN: /);
  const wrongSession = await cli(
    'verify',
    '--receipt-chain',
    chain,
    '--public-key',
    KEY_A,
    '--rotation-endorsement',
    endorsement,
  );
  assert.equal(wrongSession.code, 1);
  const twice = await cli(
    'verify',
    '--receipt-chain',
    vector('g1-rotated-twice-valid.jsonl'),
    '--public-key',
    KEY_A,
    '--rotation-endorsement',
    endorsement,
    '--rotation-endorsement',
    vector('g1-rotation-endorsement-2.json'),
    ...session,
  );
  assert.equal(twice.code, 0, twice.stdout);
  assert.match(
    twice.stdout,
    /Root hash: eac0a75a58ab7e7a6a324aedb7cb6e0802999060f573088b60ca8fdff6d6d8b6\n/,
  );
  const rootless = await cli(
    'verify',
    '--receipt-chain',
    chain,
    '--rotation-endorsement',
    endorsement,
  );
  assert.equal(rootless.code, 2);
  assert.match(rootless.stderr, /--rotation-endorsement needs --public-key/);
});

test('conformance vectors through the CLI: verdict, Broke at and error texts', async () => {
  const cases: Array<[string, number, RegExp]> = [
    [
      'valid-chain.jsonl',
      0,
      /^CHAIN VALID: .*\n {2}Receipts: {2}5\n {2}Final seq: 4\n {2}Root hash: be904bd5ca82adc26c2969872c23925f22ff24e33faf44a1185b9ffc0e2c2b5a\n/,
    ],
    [
      'broken-chain.jsonl',
      1,
      /^CHAIN BROKEN: .*\n {2}Error: {4}seq 3: chain_prev_hash mismatch\n {2}Broke at: seq 3\n/,
    ],
    [
      'invalid-signature.json',
      1,
      /\n {2}Error: {4}seq 0: signature: signature verification failed\n {2}Broke at: seq 0\n/,
    ],
    [
      'g1-inconsistent-close.jsonl',
      1,
      /\n {2}Error: {4}seq 4: session_close root_hash mismatch\n {2}Broke at: seq 4\n/,
    ],
    [
      'g1-ext-chain.jsonl',
      0,
      /Root hash: 19805bc704923ef6a602abdfa3dc4982134997a69e3fff7a627b3f1805511d1b\n/,
    ],
  ];
  for (const [name, expected, pattern] of cases) {
    const { code, stdout } = await cli(
      'verify',
      '--receipt-chain',
      vector(name),
      '--public-key',
      KEY_A,
    );
    assert.equal(code, expected, `${name}: ${stdout}`);
    assert.match(stdout, pattern, name);
  }
});

test('--require-sealed accepts a sealed chain and breaks one that does not end in a close', async () => {
  const sealed = await verifySample('--require-sealed');
  assert.equal(sealed.code, 0);
  const output = path.join(dir, 'unsealed-report.json');
  const unsealed = await cli(
    'verify',
    '--receipt-chain',
    vector('valid-chain.jsonl'),
    '--public-key',
    KEY_A,
    '--require-sealed',
    '--output',
    output,
  );
  assert.equal(unsealed.code, 1);
  assert.match(unsealed.stdout, /^CHAIN BROKEN: .*\n {2}Error: {4}chain is not sealed/);
  assert.equal(report(output)['verdict'], 'invalid');
  assert.equal(report(output)['sealed'], false);
});

test('verification-report.json carries every field', async () => {
  const output = path.join(dir, 'reports', 'verification-report.json');
  const valid = await verifySample('--output', output);
  assert.equal(valid.code, 0);
  const ok = report(output);
  assert.deepEqual(Object.keys(ok).sort(), [
    'broken_at_seq',
    'end_time',
    'error',
    'final_seq',
    'policy_hash_match',
    'policy_hashes',
    'receipt_count',
    'root_hash',
    'sealed',
    'signer_keys',
    'start_time',
    'torn_tail',
    'trusted',
    'verdict',
  ]);
  assert.deepEqual(
    { ...ok, root_hash: typeof ok['root_hash'] },
    {
      verdict: 'valid',
      trusted: true,
      sealed: true,
      receipt_count: 22,
      final_seq: 21,
      root_hash: 'string',
      start_time: '2026-11-26T22:00:00Z',
      end_time: '2026-11-26T22:00:00.147Z',
      signer_keys: [SAMPLE_KEY],
      policy_hashes: [SAMPLE_POLICY_HASH],
      policy_hash_match: null,
      broken_at_seq: null,
      torn_tail: null,
      error: null,
    },
  );
  const broken = await cli(
    'verify',
    '--receipt-chain',
    vector('broken-chain.jsonl'),
    '--public-key',
    KEY_A,
    '--output',
    output,
  );
  assert.equal(broken.code, 1);
  assert.equal(report(output)['verdict'], 'invalid');
  assert.equal(report(output)['broken_at_seq'], 3);
  assert.equal(report(output)['error'], 'seq 3: chain_prev_hash mismatch');
});

test('empty evidence is a failure (verdict error); unreadable evidence is exit 2', async () => {
  const output = path.join(dir, 'empty-report.json');
  const empty = file('empty.jsonl', '\n\n');
  const none = await cli(
    'verify',
    '--receipt-chain',
    empty,
    '--public-key',
    SAMPLE_KEY,
    '--output',
    output,
  );
  assert.equal(none.code, 1);
  assert.equal(none.stdout, `No receipts found in ${empty}\n`);
  assert.equal(report(output)['verdict'], 'error');
  const missing = path.join(dir, 'missing.jsonl');
  const unreadable = await cli(
    'verify',
    '--receipt-chain',
    missing,
    '--public-key',
    SAMPLE_KEY,
    '--output',
    output,
  );
  assert.equal(unreadable.code, 2);
  assert.equal(
    unreadable.stderr,
    `pipelock-egress verify: cannot read ${missing}: no such file or directory\n`,
  );
  assert.equal(report(output)['verdict'], 'error');
});

test(
  'a FIFO or a device is refused as input (exit 2), never read for ever',
  { timeout: 30_000 },
  async () => {
    const fifos = scratchDir('verify-fifo-');
    const fifo = path.join(fifos, 'evidence.jsonl');
    execFileSync('mkfifo', [fifo]);
    const shards = scratchDir('verify-shards-');
    execFileSync('mkfifo', [path.join(shards, 'evidence-proxy-0.jsonl')]);
    const cases: [chain: string, refused: string][] = [
      [fifo, fifo],
      ['/dev/zero', '/dev/zero'],
      [shards, path.join(shards, 'evidence-proxy-0.jsonl')],
    ];
    for (const [chain, refused] of cases) {
      const result = await cli('verify', '--receipt-chain', chain, '--public-key', SAMPLE_KEY);
      assert.equal(result.code, 2, chain);
      assert.equal(
        result.stderr,
        `pipelock-egress verify: cannot read ${refused}: not a regular file or a directory\n`,
      );
    }
    const hash = await verifySample('--policy-hash', fifo);
    assert.equal(hash.code, 2);
    assert.match(hash.stderr, /cannot read policy hash .*evidence\.jsonl: not a regular file/);
    // A report under a path that cannot be made is an error, not a hang (Node's recursive mkdir).
    const output = await verifySample('--output', '/proc/pipelock-egress-nope/report.json');
    assert.equal(output.code, 2);
  },
);

test('a malformed line is CHAIN BROKEN with its place, not a crash', async () => {
  const broken = file('malformed.jsonl', `${sample[0]?.text ?? ''}{"v":2,\n`);
  const { code, stdout } = await verifyUnderSampleKey(broken);
  assert.equal(code, 1);
  assert.match(stdout, /^CHAIN BROKEN: .*\n {2}Error: {4}.*malformed\.jsonl: line 2: invalid JSON/);
});

test('what the evidence holds reaches the terminal escaped: a crafted key with CSI, bidi and a line separator', async () => {
  const hostile = 'x\u009b2K\u001b[1A\u202eCHAIN VALID\u2028';
  const line = (sample[1]?.text ?? '').replace(
    '"action_record":{',
    `"action_record":{${JSON.stringify(hostile)}:1,`,
  );
  assert.notEqual(line, sample[1]?.text);
  const broken = file('hostile-key.jsonl', `${sample[0]?.text ?? ''}${line}`);
  const { code, stdout } = await verifyUnderSampleKey(broken);
  assert.equal(code, 1);
  assert.match(stdout, /^CHAIN BROKEN: /);
  assert.match(stdout, /\\u009b2K/);
  // eslint-disable-next-line no-control-regex -- the raw characters must not be there
  assert.doesNotMatch(stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2028]/);
});

test('usage errors exit 2 with the usage text', async () => {
  for (const argv of [
    ['verify'],
    ['verify', '--receipt-chain'],
    ['verify', '--receipt-chain', sampleFile, '--frobnicate'],
    ['verify', '--receipt-chain', sampleFile, 'extra'],
    ['verify', '--receipt-chain', sampleFile, '--receipt-chain', sampleFile],
    ['verify', '--receipt-chain', sampleFile, '--whole-recorder=yes'],
  ]) {
    const { code, stderr } = await cli(...argv);
    assert.equal(code, 2, argv.join(' '));
    assert.match(stderr, /^pipelock-egress: verify: .*\n\nUsage: /, argv.join(' '));
  }
});

function peakRssKib(stderr: string): number {
  const match = /peak-rss-kib (\d+)/.exec(stderr);
  assert.ok(match, stderr);
  return Number(match[1]);
}

/** The verifier's V8 heap limit: far below the 118 MiB chain, which it must never hold. */
const HEAP_MIB = 40;

function verifyInChild(evidence: string, ...flags: string[]) {
  return spawnSync(
    process.execPath,
    [
      `--max-old-space-size=${HEAP_MIB}`,
      '--import',
      'tsx',
      '--import',
      './test/cli/peak-rss.ts',
      'src/cli/index.ts',
      'verify',
      '--receipt-chain',
      evidence,
      '--public-key',
      SAMPLE_KEY,
      '--whole-recorder',
      ...flags,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
}

/** Writes a 100,000-decision session, and its first ~20,000 receipts (a valid prefix) beside it. */
function writeSamples(big: string, prefix: string): void {
  const [bigFd, prefixFd] = [openSync(big, 'w'), openSync(prefix, 'w')];
  let batch = '';
  let receipts = 0;
  let flushedReceipts = 0;
  const flush = () => {
    writeSync(bigFd, batch);
    if (flushedReceipts < 20_000) writeSync(prefixFd, batch);
    flushedReceipts = receipts;
    batch = '';
  };
  for (const line of sampleEvidence(100_000)) {
    batch += line.text;
    if (line.receipt) receipts++;
    if (batch.length > 1 << 20) flush();
  }
  flush();
  closeSync(bigFd);
  closeSync(prefixFd);
}

// The child's heap limit (96 MiB) is below the big file's size, so holding the file or its
// receipts would not fit; and five times the receipts must not cost more resident memory.
test(
  'a 100,000-receipt evidence file verifies through the CLI in bounded memory',
  { timeout: 300_000 },
  () => {
    const big = path.join(dir, 'evidence-100k.jsonl');
    const prefix = path.join(dir, 'evidence-20k.jsonl');
    writeSamples(big, prefix);
    const [size, prefixSize] = [statSync(big).size, statSync(prefix).size];

    const baseline = verifyInChild(prefix);
    assert.equal(baseline.status, 0, baseline.stderr);
    const large = verifyInChild(big, '--require-sealed');
    assert.equal(large.status, 0, large.stderr);
    assert.match(large.stdout, /^CHAIN VALID: .*\n {2}Receipts: {2}100002\n/);
    // Held in memory, the chain alone would overflow the heap limit and crash the verifier; the
    // RSS figures are printed for the record (they vary with the Node version's GC).
    assert.ok(size > 2 * HEAP_MIB * 2 ** 20, 'the evidence is far larger than the heap limit');
    const growthKib = peakRssKib(large.stderr) - peakRssKib(baseline.stderr);
    console.log(
      `# 100k receipts (${(size / 2 ** 20).toFixed(0)} MiB) with a ${HEAP_MIB} MiB heap: peak RSS ${(peakRssKib(large.stderr) / 1024).toFixed(0)} MiB, ` +
        `${(growthKib / 1024).toFixed(1)} MiB more than for its first ${(prefixSize / 2 ** 20).toFixed(0)} MiB`,
    );
  },
);

// A writer killed mid-write leaves its last line unfinished; verify must still judge the rest.
const closeAt = sample.findIndex(
  (l) => l.receipt?.receipt.action_record.session_control?.kind === 'session_close',
);
const beforeClose = sample
  .slice(0, closeAt)
  .map((l) => l.text)
  .join('');
const halfLine = (l: { text: string } | undefined) => (l?.text ?? '').slice(0, 57);

test('a torn last line is reported; the complete lines before it still verify', async () => {
  const torn = file('torn.jsonl', beforeClose + halfLine(sample[closeAt]));
  const output = path.join(dir, 'torn-report.json');
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    torn,
    '--public-key',
    SAMPLE_KEY,
    '--output',
    output,
  );
  assert.equal(code, 0);
  assert.match(stdout, /^CHAIN VALID: /);
  assert.match(
    stdout,
    /\n {2}Sealed: {4}no\n {2}Torn tail: .*torn\.jsonl: line \d+ \(57 bytes of a line the writer did not finish; not verified\)\n/,
  );
  const written = report(output);
  assert.equal(written['verdict'], 'valid');
  assert.equal(written['receipt_count'], closeAt);
  assert.deepEqual(written['torn_tail'], { where: `${torn}: line ${closeAt + 1}`, bytes: 57 });
  const required = await cli(
    'verify',
    '--receipt-chain',
    torn,
    '--public-key',
    SAMPLE_KEY,
    '--require-sealed',
  );
  assert.equal(required.code, 1);
});

test('bytes after a sealed chain are not a torn tail but tampering', async () => {
  const afterSeal = file('after-seal.jsonl', sample.map((l) => l.text).join('') + '{"v":2,"seq":9');
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    afterSeal,
    '--public-key',
    SAMPLE_KEY,
  );
  assert.equal(code, 1);
  assert.match(stdout, /^CHAIN BROKEN: .*\n {2}Error: {4}.*a torn line follows the sealed chain/);
});

test('a torn line anywhere but at the very end of a directory is malformed', async () => {
  const shards = path.join(dir, 'torn-shards');
  mkdirSync(shards);
  const lines = sample.slice(0, closeAt).map((l) => l.text);
  writeFileSync(
    path.join(shards, 'evidence-proxy-0.jsonl'),
    lines.slice(0, 5).join('') + halfLine(sample[5]),
  );
  writeFileSync(path.join(shards, 'evidence-proxy-6.jsonl'), lines.slice(6).join(''));
  const { code, stdout } = await cli(
    'verify',
    '--receipt-chain',
    shards,
    '--public-key',
    SAMPLE_KEY,
  );
  assert.equal(code, 1);
  assert.match(stdout, /evidence-proxy-0\.jsonl: line 6: torn line followed by more evidence/);
});

test('--output never writes over or into what is verified, nor onto a directory: exit 2 before verifying', async () => {
  const chainDir = path.join(dir, 'output-clash');
  mkdirSync(chainDir, { recursive: true });
  const evidence = path.join(chainDir, 'evidence-proxy-1.jsonl');
  writeFileSync(evidence, readFileSync(sampleFile));
  const hashFile = file('output-clash-hash.txt', `${SAMPLE_POLICY_HASH}\n`);
  const before = readFileSync(evidence);
  const dangling = path.join(dir, 'output-clash-link.json');
  symlinkSync(path.join(chainDir, 'planted.json'), dangling);
  for (const [chain, output, says] of [
    [evidence, evidence, `would write over ${evidence}`],
    [chainDir, path.join(chainDir, 'evidence-proxy-2.jsonl'), `would write into ${chainDir}`],
    [chainDir, path.join(chainDir, 'new', 'report.json'), `would write into ${chainDir}`],
    [evidence, hashFile, `would write over ${hashFile}`],
    [evidence, chainDir, 'is a directory'],
    // A report's usual name is no pass into an evidence directory.
    [chainDir, path.join(chainDir, 'verification-report.json'), `would write into ${chainDir}`],
    [evidence, dangling, 'is a symbolic link to nothing'],
  ] as const) {
    const { code, stdout, stderr } = await cli(
      'verify',
      '--receipt-chain',
      chain,
      '--public-key',
      SAMPLE_KEY,
      '--policy-hash',
      hashFile,
      '--output',
      output,
    );
    assert.equal(code, 2, `${output}: ${stderr}`);
    assert.ok(stderr.includes(says), stderr);
    assert.equal(stdout, '', 'nothing was verified');
  }
  assert.deepEqual(readFileSync(evidence), before);
  assert.equal(readFileSync(hashFile, 'utf8'), `${SAMPLE_POLICY_HASH}\n`);
  // A report beside the evidence (not in it) is written.
  const beside = path.join(dir, 'output-clash-report.json');
  const ok = await cli(
    'verify',
    '--receipt-chain',
    chainDir,
    '--public-key',
    SAMPLE_KEY,
    '--output',
    beside,
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(report(beside)['verdict'], 'valid');
});
