import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EvidenceFull, EvidenceWriter } from '../../src/engine/evidence-writer.js';
import type { DecisionEntry } from '../../src/engine/decision-log.js';
import { MAX_SHARD_BYTES, MAX_SHARDS } from '../../src/receipts/index.js';
import {
  assertValid,
  backend,
  cleanup,
  decisions,
  readCompleteLines,
  readEvidenceDir,
  tempDir,
} from './helpers.js';

const POLICY_HASH = 'a'.repeat(64);

function entry(i: number, method = 'GET'): DecisionEntry {
  return {
    actionId: randomUUID(),
    requestId: `req-${i}`,
    transport: 'forward',
    method,
    target: `http://api.example.test/r/${i}`,
    verdict: 'allow',
    phase: 'intent',
  };
}

interface Extra {
  fsyncIntervalMs?: number;
  maxEntriesPerFile?: number;
  maxFiles?: number;
  checkpointInterval?: number;
  seed?: Uint8Array;
}

function open(dir: string, extra: Extra = {}) {
  return EvidenceWriter.open({
    dir,
    backend,
    seed: randomBytes(32),
    run: { actor: 'writer-test', policyHash: POLICY_HASH },
    ...extra,
  });
}

function writer(dir: string, extra: Extra = {}) {
  return open(dir, extra).writer;
}

test('create, append, seal: the evidence verifies whole and sealed with the right counts', async () => {
  const root = tempDir();
  const dir = join(root, 'evidence');
  try {
    const w = writer(dir);
    for (let i = 0; i < 25; i++) await w.append(entry(i, i % 2 ? 'POST' : 'GET'));
    await w.append({ ...entry(99), verdict: 'block', layer: 'destination', pattern: 'no rule' });
    const summary = w.seal();
    assert.equal(summary.receiptCount, 28, 'open + 26 decisions + close');
    assert.equal(summary.finalSeq, 27n);
    const evidence = readEvidenceDir(dir);
    assertValid(evidence, true);
    assert.equal(evidence.report.receipt_count, 28);
    assert.equal(evidence.report.root_hash, summary.rootHash);
    assert.deepEqual(evidence.report.policy_hashes, [POLICY_HASH]);
    assert.equal(evidence.report.recorder?.seal_anchored, true);
    assert.equal(Number(evidence.report.recorder?.transcript_root?.receipt_count), 28);
    const decided = decisions(evidence.receipts);
    assert.equal(decided.length, 26);
    const post = decided.find((r) => r.action_record.request_id === 'req-1');
    assert.equal(post?.action_record.action_type, 'write');
    assert.equal(post?.action_record.side_effect_class, 'external_write');
    const blocked = decided.find((r) => r.action_record.verdict === 'block');
    assert.equal(blocked?.action_record.layer, 'destination');
    assert.equal(blocked?.action_record.actor, 'writer-test');
    // Sealed: nothing more may be appended.
    await assert.rejects(w.append(entry(100)), /sealed/);
  } finally {
    cleanup(root);
  }
});

test('an unsealed writer leaves a valid, unsealed prefix', async () => {
  const root = tempDir();
  try {
    const w = writer(root);
    for (let i = 0; i < 5; i++) await w.append(entry(i));
    w.abandon();
    const evidence = readEvidenceDir(root);
    assertValid(evidence, false);
    assert.equal(evidence.report.receipt_count, 6);
  } finally {
    cleanup(root);
  }
});

test('files rotate at maxEntriesPerFile and verify in numeric order', async () => {
  const root = tempDir();
  try {
    const w = writer(root, { maxEntriesPerFile: 3, checkpointInterval: 4 });
    for (let i = 0; i < 40; i++) await w.append(entry(i));
    const summary = w.seal();
    const names = readdirSync(root).filter((n) => n.startsWith('evidence-'));
    assert.ok(names.length > 10, `expected many files, got ${names.length}`);
    assert.deepEqual([...summary.files].sort(), [...names].sort());
    // Lexicographic order differs from numeric order here, so a wrong order would break the chain.
    assert.notDeepEqual([...names].sort(), readEvidenceDir(root).files);
    for (const name of names) {
      const lines = readFileSync(join(root, name), 'utf8').split('\n').filter(Boolean);
      assert.ok(lines.length <= 3, `${name} has ${lines.length} entries`);
    }
    const evidence = readEvidenceDir(root);
    assertValid(evidence, true);
    assert.equal(evidence.report.receipt_count, 42);
  } finally {
    cleanup(root);
  }
});

test('no evidence file grows past the verifier shard limit', async () => {
  const root = tempDir();
  try {
    // Long targets make big receipts: a file must rotate on size too, not only on entry count.
    const w = writer(root, { maxEntriesPerFile: 100_000 });
    const long = 'x'.repeat(6_000);
    for (let i = 0; i < 1_600; i++)
      await w.append({ ...entry(i), target: `http://api.example.test/r/${i}?q=${long}` });
    w.seal();
    for (const name of readdirSync(root)) {
      const size = readFileSync(join(root, name)).length;
      assert.ok(size <= MAX_SHARD_BYTES, `${name} is ${size} bytes`);
    }
    assertValid(readEvidenceDir(root), true);
  } finally {
    cleanup(root);
  }
});

/** Appends until the writer refuses for want of room; every later append is refused too. */
async function fill(w: EvidenceWriter, limit = 100_000): Promise<number> {
  for (let i = 0; i < limit; i++) {
    try {
      await w.append(entry(i));
    } catch (error) {
      assert.ok(error instanceof EvidenceFull, String(error));
      await assert.rejects(w.append(entry(i + 1)), EvidenceFull);
      return i;
    }
  }
  throw new Error(`${limit} appends and the evidence is not full`);
}

const evidenceFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('evidence-'));

test('evidence never has more files than a verifier reads: beyond, appends are refused and the chain seals', async () => {
  const root = tempDir();
  try {
    const w = writer(root, { maxEntriesPerFile: 8 });
    const appended = await fill(w);
    const summary = w.seal();
    assert.equal(evidenceFiles(root).length, MAX_SHARDS);
    const evidence = readEvidenceDir(root);
    assertValid(evidence, true);
    // Every receipt appended is there, and the two session receipts.
    assert.equal(summary.receiptCount, appended + 2);
    assert.equal(evidence.report.receipt_count, appended + 2);
    // What sealing wrote fits the room kept for it: each line well under 4 KiB.
    const last = readEvidenceDir(root).files.at(-1) ?? '';
    for (const line of readFileSync(join(root, last), 'utf8').split('\n').filter(Boolean))
      assert.ok(Buffer.byteLength(line) < 2048, `${Buffer.byteLength(line)} bytes: ${line}`);
  } finally {
    cleanup(root);
  }
});

test('the file budget holds for any rotation limits, long receipts and a continued chain', async () => {
  for (const maxEntriesPerFile of [2, 3, 5, 8]) {
    for (const maxFiles of [3, 4, 7]) {
      const root = tempDir();
      try {
        const w = writer(root, { maxEntriesPerFile, maxFiles, checkpointInterval: 3 });
        await fill(w);
        w.seal();
        assert.ok(evidenceFiles(root).length <= maxFiles, `${maxEntriesPerFile}/${maxFiles}`);
        assertValid(readEvidenceDir(root), true);
      } finally {
        cleanup(root);
      }
    }
  }
  // Size, not entries: receipts of 240 KB each (a long target, at its escaped length), and a
  // crashed chain continued within the same budget (its files count).
  const root = tempDir();
  try {
    const big = (i: number) => ({
      ...entry(i),
      target: `http://api.example.test/?q=${'<'.repeat(40_000)}`,
    });
    const seed = randomBytes(32);
    const first = writer(root, { maxFiles: 3, seed });
    for (let i = 0; i < 5; i++) await first.append(big(i));
    first.abandon();
    const again = open(root, { maxFiles: 3, seed });
    assert.ok(again.resumed);
    let appended = 0;
    try {
      for (; appended < 1_000; appended++) await again.writer.append(big(appended));
    } catch (error) {
      assert.ok(error instanceof EvidenceFull, String(error));
    }
    assert.ok(appended > 20 && appended < 1_000, String(appended));
    again.writer.seal();
    assert.equal(evidenceFiles(root).length, 3);
    assertValid(readEvidenceDir(root), true);
    assert.throws(() => open(root, { maxFiles: 3, seed }), /already holds 3 evidence files/);
  } finally {
    cleanup(root);
  }
});

test('a directory that holds a sealed chain is refused: a sealed chain is final', async () => {
  const root = tempDir();
  try {
    const seed = randomBytes(32);
    const first = writer(root, { seed });
    await first.append(entry(1));
    first.seal();
    assert.throws(
      () => writer(root, { seed }),
      /already holds evidence-proxy-0\.jsonl: cannot continue the chain in .*: it is sealed/,
    );
    // The earlier chain is untouched.
    assertValid(readEvidenceDir(root), true);
  } finally {
    cleanup(root);
  }
});

test('an existing empty directory is accepted and made 0700 when created', () => {
  const root = tempDir();
  try {
    mkdirSync(join(root, 'empty'));
    writer(join(root, 'empty')).seal();
    const created = join(root, 'new', 'nested');
    writer(created).seal();
    const mode = Number(execFileSync('stat', ['-c', '%a', created]).toString().trim());
    assert.equal(mode, 700);
    const file = join(created, 'evidence-proxy-0.jsonl');
    assert.equal(Number(execFileSync('stat', ['-c', '%a', file]).toString().trim()), 600);
  } finally {
    cleanup(root);
  }
});

test('a full disk makes append reject, and every later append too; the file stays verifiable', async () => {
  const root = tempDir();
  const mount = join(root, 'tiny');
  mkdirSync(mount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount]);
  try {
    const w = writer(mount);
    let failedAt = -1;
    let error: Error | undefined;
    for (let i = 0; i < 2_000 && failedAt < 0; i++) {
      try {
        await w.append(entry(i));
      } catch (e) {
        failedAt = i;
        error = e as Error;
      }
    }
    assert.ok(failedAt > 0, 'the disk never filled');
    assert.match(error?.message ?? '', /evidence cannot be written/);
    // Space freed elsewhere does not un-fail the writer: the chain has a hole otherwise.
    await assert.rejects(w.append(entry(5_000)), /evidence cannot be written/);
    await assert.rejects(w.append(entry(5_001)), /evidence cannot be written/);
    w.abandon();
    // What was acknowledged is on disk as complete lines and verifies as an unsealed prefix.
    const evidence = readEvidenceDir(mount);
    assertValid(evidence, false);
    assert.equal(evidence.report.receipt_count, failedAt + 1);
  } finally {
    execFileSync('umount', ['-l', mount]);
    cleanup(root);
  }
});

const mod = (n: number, m: number): number => ((n % m) + m) % m;

/** Fills what is left of a tmpfs with a file of whole pages, until the disk takes no more. */
function fillDisk(mount: string): void {
  const page = Buffer.alloc(4096, 0x78);
  const fd = openSync(join(mount, 'filler'), 'w');
  try {
    for (;;) writeSync(fd, page);
  } catch {
    // full
  } finally {
    closeSync(fd);
  }
}

test('a seal the disk has room for only in part leaves the chain as it was before it: unsealed, verifying, and continued by the next engine', async () => {
  const root = tempDir();
  let cut = 0;
  try {
    // The free space of the file's last page, 256 bytes at a time: somewhere the session
    // close fits and its transcript root or checkpoint does not.
    for (let slack = 128; slack < 4096; slack += 256) {
      const mount = join(root, `m${slack}`);
      mkdirSync(mount);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount]);
      try {
        const dir = join(mount, 'evidence');
        const seed = randomBytes(32);
        const w = writer(dir, { seed });
        const file = join(dir, 'evidence-proxy-0.jsonl');
        await w.append(entry(1));
        const before = statSync(file).size;
        await w.append(entry(2));
        // A line's length beyond its target's, to pad the file to end `slack` bytes short of a page.
        const overhead = statSync(file).size - before - entry(2).target.length;
        const origin = 'http://api.example.test/';
        const pad = mod(4096 - slack - statSync(file).size - overhead - origin.length, 4096);
        await w.append({ ...entry(3), target: `${origin}${'p'.repeat(pad)}` });
        // Within a few bytes: a receipt's timestamp is as long as its fraction of a second.
        assert.ok(Math.abs((statSync(file).size % 4096) - (4096 - slack)) < 16, `slack ${slack}`);
        fillDisk(mount);
        const unsealed = readFileSync(file);
        try {
          w.seal();
          continue;
        } catch {
          w.abandon();
        }
        // Nothing of the seal stays: the file is as it was, an unsealed chain that verifies.
        assert.deepEqual(readFileSync(file), unsealed, `slack ${slack}`);
        assert.deepEqual(evidenceFiles(dir), ['evidence-proxy-0.jsonl']);
        assertValid(readEvidenceDir(dir), false);
        cut++;
        // Once there is room again, the next engine continues it and seals it.
        rmSync(join(mount, 'filler'));
        open(dir, { seed }).writer.seal();
        assertValid(readEvidenceDir(dir), true);
      } finally {
        execFileSync('umount', ['-l', mount]);
      }
    }
    assert.ok(cut > 0, 'no seal ever failed: the disk was never full enough');
  } finally {
    cleanup(root);
  }
});

test('a file begun when the disk is full is removed: the next engine continues the chain', async () => {
  const root = tempDir();
  const mount = join(root, 'tiny');
  mkdirSync(mount);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mount]);
  try {
    const dir = join(mount, 'evidence');
    const seed = randomBytes(32);
    const crashed = writer(dir, { seed });
    await crashed.append(entry(1));
    crashed.abandon();
    fillDisk(mount);
    // The restart's session open goes into a new file, which the disk has no room for.
    assert.throws(() => open(dir, { seed }), /evidence cannot be written/);
    assert.deepEqual(evidenceFiles(dir), ['evidence-proxy-0.jsonl']);
    // A fresh directory on a full disk is left as empty as it was.
    const fresh = join(mount, 'fresh');
    assert.throws(() => open(fresh), /evidence cannot be written/);
    assert.deepEqual(evidenceFiles(fresh), []);
    rmSync(join(mount, 'filler'));
    const { writer: next, resumed } = open(dir, { seed });
    assert.equal(resumed?.receiptCount, 2);
    next.seal();
    assertValid(readEvidenceDir(dir), true);
  } finally {
    execFileSync('umount', ['-l', mount]);
    cleanup(root);
  }
});

const CHILD = fileURLToPath(new URL('./fixtures/evidence-writer-child.ts', import.meta.url));

test('kill -9 of a process writing under load leaves only complete, verifiable lines', async () => {
  const root = tempDir();
  const dir = join(root, 'evidence');
  try {
    const seed = randomBytes(32);
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, seed.toString('hex')], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    let written = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = chunk.toString().trim().split('\n');
      written = Number(lines[lines.length - 1]);
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const deadline = Date.now() + 20_000;
    while (written < 3_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(written >= 3_000, `the child wrote only ${written} receipts`);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const files = readdirSync(dir);
    assert.ok(files.length > 1, 'the child rotated files');
    const complete = readCompleteLines(dir);
    // Only the line being written when the process died may be torn, in the last file.
    assert.ok(
      complete.torn.length === 0 ||
        (complete.torn.length === 1 && complete.torn[0] === complete.files.at(-1)),
      `torn files: ${complete.torn.join(', ')}`,
    );
    const evidence = complete;
    assertValid(evidence, false);
    assert.ok(
      evidence.report.receipt_count >= written,
      `${evidence.report.receipt_count} < ${written}`,
    );
    // A new writer with the same key continues the killed chain and seals it.
    const { writer: resumed, resumed: tail } = open(dir, { seed });
    assert.equal(tail?.receiptCount, evidence.report.receipt_count);
    assert.equal(tail?.tornFile !== undefined, complete.torn.length === 1);
    await resumed.append(entry(1));
    resumed.seal();
    const sealed = readEvidenceDir(dir);
    assertValid(sealed, true);
    assert.equal(sealed.report.receipt_count, evidence.report.receipt_count + 3);
  } finally {
    cleanup(root);
  }
});

test('fsync racing a rotation never fails the writer (a stale descriptor is not an error)', async () => {
  const root = tempDir();
  try {
    // Rotate on every other entry while fsync runs every millisecond, for a bounded time.
    const deadline = Date.now() + 2_500;
    let appended = 0;
    for (let round = 0; round < 50 && Date.now() < deadline; round++) {
      const w = EvidenceWriter.open({
        dir: join(root, `round-${round}`),
        backend,
        seed: randomBytes(32),
        run: { actor: 'fsync-race', policyHash: POLICY_HASH },
        maxEntriesPerFile: 2,
        fsyncIntervalMs: 1,
      }).writer;
      try {
        for (let i = 0; i < 300; i++) {
          await w.append(entry(i));
          appended++;
          if (i % 5 === 0) await new Promise((r) => setImmediate(r));
        }
      } finally {
        w.abandon();
      }
    }
    assert.ok(appended >= 1_000, `only ${appended} appends ran`);
  } finally {
    cleanup(root);
  }
});

test('a crashed chain is continued: restart session open, new file, sealed and whole', async () => {
  const root = tempDir();
  try {
    const seed = randomBytes(32);
    const crashed = writer(root, { seed });
    for (let i = 0; i < 5; i++) await crashed.append(entry(i));
    crashed.abandon();
    const { writer: next, resumed } = open(root, { seed });
    assert.deepEqual(
      { receipts: resumed?.receiptCount, finalSeq: resumed?.finalSeq, torn: resumed?.tornFile },
      { receipts: 6, finalSeq: 5n, torn: undefined },
    );
    await next.append(entry(6));
    const summary = next.seal();
    assert.deepEqual(summary.files, ['evidence-proxy-6.jsonl'], 'the restart opens a new file');
    assert.equal(summary.receiptCount, 9, '6 before the crash + open + 1 decision + close');
    const evidence = readEvidenceDir(root);
    assertValid(evidence, true);
    const opens = evidence.receipts.filter(
      (r) => r.action_record.session_control?.kind === 'session_open',
    );
    assert.equal(opens.length, 2);
    assert.equal(opens[1]?.action_record.session_control?.open?.prior_chain_seq, 5n);
  } finally {
    cleanup(root);
  }
});

test('an unfinished last line is set aside (kept) before the chain is continued', async () => {
  const root = tempDir();
  try {
    const seed = randomBytes(32);
    const crashed = writer(root, { seed });
    await crashed.append(entry(1));
    crashed.abandon();
    const file = join(root, 'evidence-proxy-0.jsonl');
    const torn = '{"v":2,"seq":3,"ts":"2026-11-2';
    appendFileSync(file, torn);
    const { writer: next, resumed } = open(root, { seed });
    assert.equal(resumed?.tornFile, 'evidence-proxy-0.jsonl.torn-1');
    assert.equal(readFileSync(join(root, 'evidence-proxy-0.jsonl.torn-1'), 'utf8'), torn);
    assert.ok(readFileSync(file, 'utf8').endsWith('\n'), 'the file ends with a complete line');
    next.seal();
    assertValid(readEvidenceDir(root), true);
  } finally {
    cleanup(root);
  }
});

for (const [what, begun] of [
  ['an empty file', ''],
  ['a file holding only part of its first line', '{"v":2,"seq":'],
] as const) {
  test(`${what} the old engine had just begun (killed between creating it and its first line) does not stop the chain being continued`, async () => {
    const root = tempDir();
    try {
      const seed = randomBytes(32);
      const crashed = writer(root, { seed, maxEntriesPerFile: 2 });
      for (let i = 0; i < 3; i++) await crashed.append(entry(i));
      crashed.abandon();
      // What its next rotation would have made: the file named for the entry after its last.
      const before = readdirSync(root).sort();
      const lastFile = readCompleteLines(root).files.at(-1) ?? '';
      const lastLine = readFileSync(join(root, lastFile), 'utf8').trimEnd().split('\n').at(-1);
      const { seq } = JSON.parse(lastLine ?? '') as { seq: number };
      const begunName = `evidence-proxy-${seq + 1}.jsonl`;
      writeFileSync(join(root, begunName), begun, { mode: 0o600 });
      const { writer: next, resumed } = open(root, { seed, maxEntriesPerFile: 2 });
      assert.equal(resumed?.receiptCount, 4, 'open + 3 decisions');
      assert.equal(resumed?.tornFile, begun === '' ? undefined : `${begunName}.torn-1`);
      if (begun !== '')
        assert.equal(readFileSync(join(root, `${begunName}.torn-1`), 'utf8'), begun);
      await next.append(entry(3));
      const summary = next.seal();
      assert.equal(summary.files[0], begunName, 'the next engine starts the file afresh');
      assert.ok(before.every((name) => readdirSync(root).includes(name)));
      assertValid(readEvidenceDir(root), true);
    } finally {
      cleanup(root);
    }
  });
}

test('a chain that cannot be continued keeps its unfinished last line where it is', async () => {
  const root = tempDir();
  try {
    const seed = randomBytes(32);
    const sealed = writer(root, { seed });
    await sealed.append(entry(1));
    sealed.seal();
    const file = join(root, 'evidence-proxy-0.jsonl');
    // Bytes after the seal are what a verifier reports: they must stay for it to see.
    appendFileSync(file, '{"v":3,"seq":999');
    const before = readFileSync(file);
    assert.throws(() => writer(root, { seed }), /it is sealed/);
    assert.deepEqual(readFileSync(file), before);
    assert.deepEqual(readdirSync(root), ['evidence-proxy-0.jsonl']);
  } finally {
    cleanup(root);
  }
});

for (const [what, plant, says] of [
  [
    'a symbolic link',
    symlinkSync,
    /evidence-proxy-0\.jsonl is a symbolic link, not evidence the engine wrote/,
  ],
  [
    'a second name (hard link) of a file',
    linkSync,
    /evidence-proxy-0\.jsonl has other names \(hard links\)/,
  ],
] as const) {
  test(`an evidence file that is ${what} is refused, and what it names is not touched`, () => {
    const root = tempDir();
    const victim = join(tempDir(), 'victim.txt');
    try {
      writeFileSync(victim, 'line one\nline two\nimportant tail');
      plant(victim, join(root, 'evidence-proxy-0.jsonl'));
      assert.throws(() => writer(root), says);
      assert.equal(readFileSync(victim, 'utf8'), 'line one\nline two\nimportant tail');
      assert.deepEqual(readdirSync(root), ['evidence-proxy-0.jsonl']);
    } finally {
      cleanup(root, join(victim, '..'));
    }
  });
}

test('an evidence directory that is a file, or under one, is refused saying so', () => {
  const root = tempDir();
  try {
    const file = join(root, 'a-file');
    writeFileSync(file, '');
    for (const dir of [file, join(file, 'below')])
      assert.throws(
        () => writer(dir),
        /evidence directory .* is not a directory \(or a path to it is a file\)/,
      );
  } finally {
    cleanup(root);
  }
});

test('an evidence directory others can write, or another user owns, is refused before anything is written', () => {
  const root = tempDir();
  try {
    chmodSync(root, 0o777);
    assert.throws(
      () => writer(root),
      /is writable by other users \(mode 777\): they could remove or replace evidence files/,
    );
    chmodSync(root, 0o700);
    chownSync(root, 4242, 4242);
    assert.throws(() => writer(root), /is owned by uid 4242, not this user \(uid 0\)/);
    assert.deepEqual(readdirSync(root), []);
  } finally {
    cleanup(root);
  }
});

for (const [how, lose] of [
  ['moved away', (file: string) => renameSync(file, `${file}.moved`)],
  ['replaced', (file: string) => (rmSync(file), writeFileSync(file, ''))],
  ['cut short in place', (file: string) => truncateSync(file, 100)],
  ['written to by something else', (file: string) => appendFileSync(file, '{}\n')],
  [
    'out of reach (its directory replaced by a file)',
    (file: string) => {
      const dir = join(file, '..');
      renameSync(dir, `${dir}.moved`);
      writeFileSync(dir, '');
    },
  ],
] as const) {
  test(`an evidence file ${how} while written: appends fail within a tick, and sealing says why`, async () => {
    const root = tempDir();
    try {
      const w = writer(root, { fsyncIntervalMs: 20 });
      await w.append(entry(1));
      lose(join(root, 'evidence-proxy-0.jsonl'));
      let refused: Error | undefined;
      for (let i = 2; refused === undefined && i < 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        await w.append(entry(i)).catch((error: Error) => (refused = error));
      }
      assert.match(
        refused?.message ?? 'appends went on',
        /evidence-proxy-0\.jsonl (was removed or replaced|in .* (cannot be looked at any more|holds \d+ bytes where the engine wrote \d+))/,
      );
      assert.throws(() => w.seal(), /the evidence there is not whole/);
      w.abandon();
    } finally {
      cleanup(root, `${root}.moved`);
    }
  });
}

test('an evidence file cut after it was rotated away is named at seal, which then fails', async () => {
  const root = tempDir();
  try {
    const w = writer(root, { maxEntriesPerFile: 2 });
    for (let i = 0; i < 4; i++) await w.append(entry(i));
    truncateSync(join(root, 'evidence-proxy-0.jsonl'), 10);
    assert.throws(
      () => w.seal(),
      /evidence-proxy-0\.jsonl in .* holds 10 bytes where the engine wrote \d+: something else cut or wrote it/,
    );
    w.abandon();
  } finally {
    cleanup(root);
  }
});

test('a chain signed by another key is not continued', async () => {
  const root = tempDir();
  try {
    const crashed = writer(root);
    await crashed.append(entry(1));
    crashed.abandon();
    assert.throws(
      () => writer(root),
      /cannot continue the chain in .*: it does not verify under key [0-9a-f]{64}/,
    );
    assertValid(readEvidenceDir(root), false);
  } finally {
    cleanup(root);
  }
});
