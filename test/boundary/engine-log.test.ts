import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ENGINE_LOG_MAX_BYTES, LogBudget } from '../../src/boundary/log-budget.js';
import { EngineProcess } from '../../src/boundary/engine-process.js';
import { EngineLogTally } from '../../src/packet/engine-log.js';
import { scratchDir } from '../scratch.js';

const decision = (i: number) =>
  `{"event":"decision","verdict":"block","method":"GET","target":"http://x.test/${i}","request_id":"req-${i}"}\n`;
const refusal = '{"event":"evidence_error","message":"the evidence is full (256 files)"}\n';

/** A log of `lines` lines, every `every`-th a refusal without a receipt. */
function engineLog(lines: number, every: number): Buffer {
  const parts: string[] = [];
  for (let i = 1; i <= lines; i++) parts.push(i % every === 0 ? refusal : decision(i));
  return Buffer.from(parts.join(''));
}

/** Feeds the log through a budget in chunks cut at the given positions. */
function throughBudget(log: Buffer, maxBytes: number, cuts: readonly number[]): Buffer {
  const budget = new LogBudget(maxBytes);
  const out: Buffer[] = [];
  let start = 0;
  for (const end of [...cuts, log.length]) {
    out.push(budget.take(log.subarray(start, end)));
    start = end;
  }
  out.push(budget.finish());
  return Buffer.concat(out);
}

function randomCuts(length: number, count: number): number[] {
  return Array.from({ length: count }, () => Math.floor(Math.random() * length)).sort(
    (a, b) => a - b,
  );
}

function facts(text: string) {
  const tally = new EngineLogTally();
  for (const line of text.split('\n')) tally.add(line);
  return tally.result();
}

test('a log within its budget is written as it came, with nothing added', () => {
  const log = engineLog(200, 7);
  for (let trial = 0; trial < 50; trial++) {
    const out = throughBudget(log, log.length, randomCuts(log.length, trial % 10));
    assert.deepEqual(out, log);
  }
});

test('past its budget the log keeps whole lines, says where it stopped, and counts what it dropped', () => {
  const lines = 5_000;
  const log = engineLog(lines, 9);
  const maxBytes = Math.floor(log.length / 3);
  let first: Buffer | undefined;
  for (let trial = 0; trial < 200; trial++) {
    const out = throughBudget(log, maxBytes, randomCuts(log.length, trial % 40));
    // However the engine's writes were chunked, the same bytes.
    first ??= out;
    assert.deepEqual(out, first);
  }
  const text = (first ?? Buffer.alloc(0)).toString();
  const written = text.split('\n').slice(0, -1);
  const marker = written.findIndex((line) => line.includes('"log_cut"'));
  const kept = written.slice(0, marker);
  assert.ok(Buffer.byteLength(kept.join('\n')) + 1 <= maxBytes);
  assert.ok(Buffer.byteLength(kept.join('\n')) + 1 > maxBytes - 200, 'kept up to the limit');
  assert.equal(
    `${kept.join('\n')}\n`,
    log.subarray(0, Buffer.byteLength(kept.join('\n')) + 1).toString(),
  );
  assert.equal(marker, written.length - 2, 'the marker, then the last line');
  const last = JSON.parse(written.at(-1) ?? '') as Record<string, unknown>;
  const refusals = Math.floor(lines / 9);
  const keptRefusals = kept.filter((line) => line.includes('evidence_error')).length;
  assert.deepEqual(last, {
    event: 'log_dropped',
    lines: lines - kept.length,
    bytes: log.length - Buffer.byteLength(kept.join('\n')) - 1,
    unrecorded: refusals - keptRefusals,
    unrecorded_reason: 'the evidence is full (256 files)',
  });
  // What the Audit Packet reads from it: every refusal counted, kept or not.
  assert.deepEqual(facts(text), {
    unrecorded: { count: refusals, reason: 'the evidence is full (256 files)' },
    cut: { maxBytes, droppedLines: lines - kept.length },
  });
});

test('an unfinished line that would pass the budget is dropped whole; an overlong dropped line is counted, not read', () => {
  const budget = new LogBudget(100);
  const first = '{"event":"decision"}\n';
  assert.equal(budget.take(Buffer.from(first + 'x'.repeat(50))).toString(), first);
  assert.match(
    budget.take(Buffer.from('y'.repeat(100))).toString(),
    /^\{"event":"log_cut","max_bytes":100,/,
  );
  budget.take(Buffer.from(`\n${'z'.repeat(200_000)}${refusal}`));
  budget.take(Buffer.from(refusal.repeat(3)));
  budget.take(Buffer.from('{"event":"evidence_error","message":"unfinished'));
  const last = JSON.parse(budget.finish().toString()) as Record<string, unknown>;
  assert.equal(last['lines'], 6, 'x and y, the long line, three refusals, the unfinished one');
  assert.equal(last['unrecorded'], 3, 'a line too long to read is not parsed');

  const within = new LogBudget(100);
  assert.equal(within.take(Buffer.from('{"event":"a"}\n{"event"')).toString(), '{"event":"a"}\n');
  assert.equal(
    within.finish().toString(),
    '{"event"',
    'an unfinished last line within the budget is kept',
  );
});

/** The engine process, running `script` instead of the CLI, as an unprivileged user. */
function spawnFakeEngine(script: string, logFile: string): EngineProcess {
  const nobody = Number(execFileSync('id', ['-u', 'nobody']).toString());
  return EngineProcess.spawn({
    setpriv: 'setpriv',
    node: process.execPath,
    cli: script,
    uid: nobody,
    gid: nobody,
    proxyArgs: [],
    env: {},
    secretValues: {},
    logFile,
  });
}

async function logGrownTo(logFile: string, bytes: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((statSync(logFile, { throwIfNoEntry: false })?.size ?? 0) < bytes) {
    if (Date.now() > deadline) assert.fail(`the fake engine's log did not reach ${bytes} bytes`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('the engine process: a log past its limit is cut, and its last line is in the file when stop() returns', async (t) => {
  if (process.getuid?.() !== 0)
    assert.fail('this test drops privileges with setpriv: run it as root');
  const dir = scratchDir('pe-engine-log-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const lines = 800_000;
  // Prints most of its log, then, on SIGTERM, the rest (as the engine logs its last refusals
  // while it seals), seals and exits: the parent still has log to write when the engine is gone.
  const fake = join(dir, 'fake-engine.cjs');
  writeFileSync(
    fake,
    `const { writeSync } = require('node:fs');
const refusal = ${JSON.stringify(refusal)};
function print(from, to) {
  let batch = '';
  for (let i = from; i <= to; i++) {
    batch += i % 10 === 0 ? refusal : \`{"event":"decision","verdict":"block","method":"GET","target":"http://x.test/\${i}","request_id":"req-\${i}"}\\n\`;
    if (batch.length > 65536) { writeSync(2, batch); batch = ''; }
  }
  writeSync(2, batch);
}
process.on('SIGTERM', () => {
  print(${lines / 2 + 1}, ${lines});
  process.stdout.write('{"event":"sealed","receipts":0,"final_seq":0}\\n');
  process.exit(0);
});
print(1, ${lines / 2});
setInterval(() => {}, 1000);
`,
  );
  const logFile = join(dir, 'engine.log');
  const engine = spawnFakeEngine(fake, logFile);
  await logGrownTo(logFile, ENGINE_LOG_MAX_BYTES * 0.6);
  assert.deepEqual(await engine.stop(), { receipts: 0, finalSeq: 0 });
  assert.ok(statSync(logFile).size <= ENGINE_LOG_MAX_BYTES + 1024);
  const tally = new EngineLogTally();
  let kept = 0;
  let last = '';
  for await (const line of createInterface({ input: createReadStream(logFile) })) {
    tally.add(line);
    if (line.startsWith('{"event":"decision"') || line.startsWith('{"event":"evidence_error"'))
      kept++;
    last = line;
  }
  assert.match(last, /^\{"event":"log_dropped"/);
  assert.deepEqual(tally.result(), {
    unrecorded: { count: lines / 10, reason: 'the evidence is full (256 files)' },
    cut: { maxBytes: ENGINE_LOG_MAX_BYTES, droppedLines: lines - kept },
  });
});

test('the engine process: a log that cannot be written (a full disk) does not stop the engine, and is reported', async (t) => {
  if (process.getuid?.() !== 0)
    assert.fail('this test mounts a tmpfs and drops privileges with setpriv: run it as root');
  const dir = scratchDir('pe-engine-log-');
  chmodSync(dir, 0o755);
  const full = join(dir, 'full');
  mkdirSync(full);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', full]);
  t.after(() => {
    execFileSync('umount', [full]);
    rmSync(dir, { recursive: true, force: true });
  });
  // On SIGTERM it logs a megabyte while it seals: blocked on a pipe nobody reads, it would
  // never seal.
  const fake = join(dir, 'fake-engine.cjs');
  writeFileSync(
    fake,
    `const { writeSync } = require('node:fs');
process.on('SIGTERM', () => {
  for (let i = 0; i < 16; i++) writeSync(2, ${JSON.stringify(refusal)}.repeat(1000));
  process.stdout.write('{"event":"sealed","receipts":3,"final_seq":4}\\n');
  process.exit(0);
});
writeSync(2, '{"event":"listening"}\\n');
setInterval(() => {}, 1000);
`,
  );
  const logFile = join(full, 'engine.log');
  const engine = spawnFakeEngine(fake, logFile);
  await logGrownTo(logFile, 1);
  const sealed = await engine.stop();
  assert.equal(sealed.receipts, 3);
  assert.match(sealed.logError ?? '', /ENOSPC/);
});
