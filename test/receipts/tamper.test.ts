// Acceptance: tampering with a 1,000-decision chain is caught by `verify`, whatever the edit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli } from '../cli/run-cli.js';
import { SAMPLE_KEY, sampleEvidence } from './sample-evidence.js';
import { scratchDir } from '../scratch.js';

const lines = [...sampleEvidence(1000)].map((line) => ({
  bytes: Buffer.from(line.text.slice(0, -1)),
  receipt: line.receipt !== undefined,
}));
const receiptLines = lines.flatMap((line, i) => (line.receipt ? [i] : []));
const closeLine = receiptLines[receiptLines.length - 1] ?? -1;
const dir = scratchDir('tamper-');
let written = 0;

// Deterministic PRNG so a failure reproduces.
function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return Math.floor((state / 2 ** 32) * n);
  };
}

async function verify(evidence: readonly Buffer[], ...flags: string[]) {
  const file = path.join(dir, `evidence-${written++}.jsonl`);
  writeFileSync(file, Buffer.concat(evidence.flatMap((b) => [b, Buffer.from('\n')])));
  return cli('verify', '--receipt-chain', file, '--public-key', SAMPLE_KEY, ...flags);
}

async function assertBroken(evidence: readonly Buffer[], what: string, ...flags: string[]) {
  const { code, stdout } = await verify(evidence, ...flags);
  assert.equal(code, 1, `${what}: exit code (stdout: ${stdout})`);
  assert.match(stdout, /^CHAIN BROKEN: /, what);
}

function flipped(line: Buffer, at: number, to: number): Buffer {
  const copy = Buffer.from(line);
  copy[at] = to;
  return copy;
}

/** The byte range of the receipt (the entry's `detail` value) inside its line. */
function receiptSpan(line: Buffer): [number, number] {
  const start = line.indexOf('"detail":') + '"detail":'.length;
  return [start, line.lastIndexOf(',"prev_hash":')];
}

const original = lines.map((l) => l.bytes);

test('the untouched 1,000-decision chain verifies, sealed, also as a whole recorder', async () => {
  assert.equal(receiptLines.length, 1002);
  for (const flags of [[], ['--whole-recorder', '--require-sealed']]) {
    const { code, stdout } = await verify(original, ...flags);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^CHAIN VALID: .*\n {2}Receipts: {2}1002\n/);
    assert.match(stdout, /\n {2}Sealed: {4}yes\n/);
  }
});

function flipAt(line: number, at: number, to: number): Buffer[] {
  return original.map((b, i) => (i === line ? flipped(b, at, to) : b));
}

function randomByteOtherThan(pick: (n: number) => number, byte: number | undefined): number {
  const to = pick(256);
  return to === byte ? (to + 1) % 256 : to;
}

test('flipping any single byte inside any receipt breaks the chain', async () => {
  const pick = random(1);
  const targets: Array<[line: number, at: number]> = [];
  // The last receipt is covered by no later link: its own signature and spelling must hold.
  const [closeStart, closeEnd] = receiptSpan(original[closeLine] ?? Buffer.alloc(0));
  for (let at = closeStart; at < closeEnd; at += 37) targets.push([closeLine, at]);
  for (let n = 0; n < 100; n++) {
    const line = receiptLines[pick(receiptLines.length)] ?? 0;
    const [start, end] = receiptSpan(original[line] ?? Buffer.alloc(0));
    targets.push([line, start + pick(end - start)]);
  }
  for (const [line, at] of targets) {
    const to = randomByteOtherThan(pick, original[line]?.[at]);
    await assertBroken(flipAt(line, at, to), `line ${line + 1} byte ${at} -> 0x${to.toString(16)}`);
  }
});

test('a receipt re-spelled with the same values (hex case) is not the receipt that was signed', async () => {
  const decision = receiptLines[1] ?? 0;
  const escape = (original[decision] ?? Buffer.alloc(0)).indexOf('\\u003c') + 5;
  await assertBroken(flipAt(decision, escape, 'C'.charCodeAt(0)), 'escape \\u003c -> \\u003C');
  const close = original[closeLine] ?? Buffer.alloc(0);
  const hexLetter =
    close.indexOf('"signature":"ed25519:') +
    21 +
    close
      .subarray(close.indexOf('"signature":"ed25519:') + 21)
      .findIndex((b) => b >= 0x61 && b <= 0x66);
  const upper = (close[hexLetter] ?? 0) - 0x20;
  await assertBroken(flipAt(closeLine, hexLetter, upper), 'upper-case hex in the last signature');
});

test('with --whole-recorder, flipping any byte of any evidence line breaks it', async () => {
  const pick = random(2);
  const targets = lines.flatMap((l, i) => (l.receipt ? [] : [i]));
  for (let n = 0; n < 100; n++) targets.push(pick(lines.length));
  for (const line of targets) {
    const bytes = original[line] ?? Buffer.alloc(0);
    const at = pick(bytes.length);
    const to = randomByteOtherThan(pick, bytes[at]);
    await assertBroken(flipAt(line, at, to), `line ${line + 1} byte ${at}`, '--whole-recorder');
  }
});

test('deleting, duplicating or swapping receipts breaks the chain', async () => {
  const pick = random(3);
  const sample = [0, 1, 2, 500, 999, 1000, 1001];
  for (let n = 0; n < 8; n++) sample.push(pick(receiptLines.length - 1));
  for (const r of sample) {
    const line = receiptLines[r] ?? 0;
    const next = receiptLines[r + 1];
    if (line !== closeLine) {
      await assertBroken(
        original.filter((_, i) => i !== line),
        `delete receipt ${r}`,
      );
    }
    await assertBroken(
      original.flatMap((b, i) => (i === line ? [b, b] : [b])),
      `duplicate receipt ${r}`,
    );
    if (next !== undefined) {
      const swapped = [...original];
      [swapped[line], swapped[next]] = [
        original[next] ?? Buffer.alloc(0),
        original[line] ?? Buffer.alloc(0),
      ];
      await assertBroken(swapped, `swap receipts ${r} and ${r + 1}`);
    }
  }
  const far = [...original];
  const [a, b] = [receiptLines[10] ?? 0, receiptLines[700] ?? 0];
  [far[a], far[b]] = [original[b] ?? Buffer.alloc(0), original[a] ?? Buffer.alloc(0)];
  await assertBroken(far, 'swap receipts 10 and 700');
});

test('deleting only the session close leaves an unsealed chain; the recorder still sees it', async () => {
  const evidence = original.filter((_, i) => i !== closeLine);
  const { code, stdout } = await verify(evidence);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /\n {2}Sealed: {4}no\n/);
  await assertBroken(evidence, 'close deleted, --require-sealed', '--require-sealed');
  await assertBroken(evidence, 'close deleted, --whole-recorder', '--whole-recorder');
});

test('cutting the tail is valid but unsealed by default, and broken with --require-sealed', async () => {
  const cut = original.slice(0, closeLine);
  for (const flags of [[], ['--whole-recorder']]) {
    const { code, stdout } = await verify(cut, ...flags);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /^CHAIN VALID: .*\n {2}Receipts: {2}1001\n/);
    assert.match(stdout, /\n {2}Sealed: {4}no\n/);
  }
  const { code, stdout } = await verify(cut, '--require-sealed');
  assert.equal(code, 1);
  assert.match(stdout, /^CHAIN BROKEN: .*\n {2}Error: {4}chain is not sealed/);
});
