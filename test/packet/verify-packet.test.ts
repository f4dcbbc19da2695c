// `verify --packet DIR`: a whole Audit Packet checked without a browser. The chain as the
// action verifies it, then every other file against it; packet.json and summary.md remade from
// the verified receipts and compared byte for byte. Real packets, written the way `run` writes
// them, changed the way someone hiding a refusal would change them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../cli/run-cli.js';
import { scratchDir } from '../scratch.js';
import { SAMPLE_KEY, sampleDecision } from '../receipts/sample-evidence.js';
import { writeSamplePacket } from './packet-fixture.js';
import { jsonDifferences } from '../../src/packet/check/json-differences.js';
import { packetVerdict } from '../../src/packet/check/packet-checks.js';
import type { FileCheck } from '../../src/packet/check/file-check.js';
import { runCapsuleSha256 } from '../../src/packet/run-capsule.js';

const FILES = [
  'evidence.jsonl',
  'evidence/',
  'receipts.json',
  'policy.yaml',
  'policy-hash.txt',
  'signer-public-key.pem',
  'verification-report.json',
  'packet.json',
  'summary.md',
  'engine.log',
  './',
];

const pristine = join(scratchDir('pe-verify-packet-'), 'packet');
await writeSamplePacket(pristine, 30);
/** Another run of the same length, signed by the same key. */
const otherRun = join(scratchDir('pe-verify-packet-'), 'packet');
await writeSamplePacket(otherRun, 30, { bindRun: false });

/** A fresh copy of the sample packet, changed by `change`. */
function packetCopy(change: (dir: string) => void = () => {}): string {
  const dir = join(scratchDir('pe-verify-packet-'), 'packet');
  execFileSync('cp', ['-r', pristine, dir]);
  change(dir);
  return dir;
}

function editJson(dir: string, file: string, edit: (value: Record<string, unknown>) => void): void {
  const path = join(dir, file);
  const value = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(value);
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

function editText(dir: string, file: string, from: string | RegExp, to: string): void {
  const path = join(dir, file);
  const text = readFileSync(path, 'utf8');
  const changed = text.replace(from, to);
  assert.notEqual(changed, text, `${file} holds ${String(from)}`);
  writeFileSync(path, changed);
}

/** Each file's status as `verify --packet` prints it. */
function statuses(stdout: string): Record<string, string> {
  const lines = stdout.split('\n').filter((line) => /^ {2}(ok|[A-Z]+) +\S/.test(line));
  return Object.fromEntries(
    lines.flatMap((line) => {
      const [status, file] = line.trim().split(/ +/);
      return FILES.includes(file ?? '') ? [[file, status]] : [];
    }),
  );
}

function verify(dir: string, ...more: string[]) {
  return cli('verify', '--packet', dir, '--public-key', SAMPLE_KEY, ...more);
}

const ALL_OK = Object.fromEntries(FILES.map((file) => [file, 'ok']));

test('a packet as run writes it: the chain, then every file ok; exit 0; the report lists them', async () => {
  const out = join(scratchDir('pe-verify-packet-'), 'report.json');
  const { code, stdout, stderr } = await verify(pristine, '--output', out);
  assert.equal(code, 0, stderr);
  assert.match(stdout, new RegExp(`^CHAIN VALID: ${pristine}/evidence\\.jsonl\\n`));
  assert.match(stdout, /\n {2}Receipts: {2}32\n/);
  assert.match(stdout, new RegExp(`\\nPACKET VALID: ${pristine}\\n`));
  assert.deepEqual(statuses(stdout), ALL_OK);
  assert.match(stdout, /\n {2}ok {8}packet\.json {15}every count, hash and verdict/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
  assert.equal(report['verdict'], 'valid');
  assert.equal(report['trusted'], true);
  assert.equal(report['sealed'], true);
  assert.equal(report['receipt_count'], 32);
  assert.equal(report['error'], null);
  const files = report['files'] as FileCheck[];
  assert.deepEqual(
    files.map((f) => [f.file, f.status]),
    FILES.map((f) => [f, 'ok']),
  );
});

test('a packet whose summary cuts a target at an emoji verifies: the cut never splits a character', async () => {
  const dir = join(scratchDir('pe-verify-packet-'), 'packet');
  const target = `ws://evil.test/${'a'.repeat(484)}\u{1f600}${'b'.repeat(20)}`;
  await writeSamplePacket(dir, 5, {
    decide: (i) => (i === 4 ? { ...sampleDecision(i), method: 'WS', target } : sampleDecision(i)),
  });
  const { code, stdout } = await verify(dir);
  assert.equal(code, 0, stdout);
  assert.deepEqual(statuses(stdout), ALL_OK);
});

test('without a pinned key: PACKET UNPINNED, exit 1, unless --allow-unpinned; a wrong key: invalid', async () => {
  const unpinned = await cli('verify', '--packet', pristine);
  assert.equal(unpinned.code, 1);
  assert.match(unpinned.stdout, /\nPACKET UNPINNED: /);
  assert.match(unpinned.stderr, /the packet is only self-consistent, anyone could have signed it/);
  const allowed = await cli('verify', '--packet', pristine, '--allow-unpinned');
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stderr, /accepted without a pinned key \(--allow-unpinned\)/);
  const wrong = await cli('verify', '--packet', pristine, '--public-key', 'ab'.repeat(32));
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout, /\nPACKET INVALID: /);
});

test('a packet from a run that pinned no key: unpinned until a reviewer pins the signer', async () => {
  const dir = join(scratchDir('pe-verify-packet-'), 'packet');
  await writeSamplePacket(dir, 10, { pinned: false });
  const packet = JSON.parse(readFileSync(join(dir, 'packet.json'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal(packet['verifier']?.['verdict'], 'self_consistent_only');
  assert.equal(packet['verifier']?.['signer_key'], undefined);
  const allowed = await cli('verify', '--packet', dir, '--allow-unpinned');
  assert.equal(allowed.code, 0, allowed.stdout);
  assert.match(allowed.stdout, /\nPACKET UNPINNED: /);
  assert.deepEqual(statuses(allowed.stdout), ALL_OK);
  // The reviewer's pin makes it valid; the files still say what the run knew (no key pinned).
  const pinned = await verify(dir);
  assert.equal(pinned.code, 0, pinned.stdout);
  assert.match(pinned.stdout, /\nPACKET VALID: /);
  assert.deepEqual(statuses(pinned.stdout), ALL_OK);
});

test("a chain that does not bind its run (Pipelock's, or older): the agent is checked against the receipts, the rest is the runner's word", async () => {
  const dir = join(scratchDir('pe-verify-packet-'), 'packet');
  await writeSamplePacket(dir, 10, { bindRun: false });
  const honest = await verify(dir);
  assert.equal(honest.code, 0, honest.stdout);
  assert.match(
    honest.stdout,
    /packet\.json +.*the chain does not bind the rest of run and posture: they are the runner's own statements$/m,
  );
  editJson(dir, 'packet.json', (p) => {
    (p['run'] as Record<string, unknown>)['repository'] = 'acme/payments';
  });
  assert.equal((await verify(dir)).code, 0, 'not bound: accepted as stated');
  editJson(dir, 'packet.json', (p) => {
    (p['run'] as Record<string, unknown>)['agent_identity'] = 'release-bot';
  });
  editText(dir, 'summary.md', '`agent <ci>`', '`release-bot`');
  const other = await verify(dir);
  assert.equal(other.code, 1);
  assert.match(
    other.stdout,
    /packet\.json +run\.agent_identity is "release-bot"; the receipts were made for "agent <ci>"$/m,
  );
});

test('the run capsule: every field it binds changes its hash; what the run learns later does not', () => {
  const run = {
    provider: 'github_actions',
    repository: 'a/b',
    runId: '1',
    agentIdentity: 'bot',
  } as const;
  const posture = {
    engine: 'pipelock-egress 0.1.0',
    runnerOs: 'Linux',
    networkNamespace: 'pe-0000000001',
    scriptBasename: 'agent.sh',
    scriptArgCount: 0,
  };
  const base = runCapsuleSha256(run, posture, 'policy.yaml');
  assert.match(base, /^[0-9a-f]{64}$/);
  const variants = [
    runCapsuleSha256({ ...run, repository: 'a/c' }, posture, 'policy.yaml'),
    runCapsuleSha256({ ...run, runId: '2' }, posture, 'policy.yaml'),
    runCapsuleSha256({ ...run, sha: 'f'.repeat(40) }, posture, 'policy.yaml'),
    runCapsuleSha256({ ...run, agentIdentity: 'bot2' }, posture, 'policy.yaml'),
    runCapsuleSha256(run, { ...posture, scriptBasename: 'other.sh' }, 'policy.yaml'),
    runCapsuleSha256(run, { ...posture, scriptArgCount: 1 }, 'policy.yaml'),
    runCapsuleSha256(run, { ...posture, engine: 'pipelock-egress 0.2.0' }, 'policy.yaml'),
    runCapsuleSha256(run, posture, 'other.yaml'),
  ];
  assert.equal(new Set([base, ...variants]).size, variants.length + 1);
  const later = { ...run, startedAt: 'x', completedAt: 'y', agentExitCode: 3 };
  assert.equal(
    runCapsuleSha256(
      later,
      { ...posture, agentUid: 5, hostUid: 6, proxyUrl: 'http://x' } as typeof posture,
      'policy.yaml',
    ),
    base,
  );
});

interface Tamper {
  readonly what: string;
  readonly change: (dir: string) => void;
  readonly statuses: Record<string, string>;
  /** What the first failing file's line must say. */
  readonly says: RegExp;
}

const EVIDENCE_FILE = join('evidence', 'evidence-proxy-0.jsonl');

const TAMPERS: readonly Tamper[] = [
  {
    what: "evidence/ replaced with another run's",
    change: (dir) => {
      rmSync(join(dir, 'evidence'), { recursive: true });
      execFileSync('cp', ['-r', join(otherRun, 'evidence'), join(dir, 'evidence')]);
    },
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +evidence-proxy-0\.jsonl and evidence\.jsonl differ at byte \d+ of evidence\.jsonl\n/,
  },
  {
    what: "evidence/'s file replaced with garbage",
    change: (dir) => writeFileSync(join(dir, EVIDENCE_FILE), 'garbage\n'),
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +evidence-proxy-0\.jsonl and evidence\.jsonl differ at byte 0 of evidence\.jsonl\n/,
  },
  {
    what: 'evidence/ removed',
    change: (dir) => rmSync(join(dir, 'evidence'), { recursive: true }),
    statuses: { 'evidence/': 'MISSING' },
    says: /\n {2}MISSING +evidence\/ +not in the packet\n/,
  },
  {
    what: "evidence/ a symbolic link to the pristine packet's",
    change: (dir) => {
      rmSync(join(dir, 'evidence'), { recursive: true });
      symlinkSync(join(pristine, 'evidence'), join(dir, 'evidence'));
    },
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +a symbolic link, not a directory\n/,
  },
  {
    what: "evidence/'s file a symbolic link to evidence.jsonl",
    change: (dir) => {
      rmSync(join(dir, EVIDENCE_FILE));
      symlinkSync(join(dir, 'evidence.jsonl'), join(dir, EVIDENCE_FILE));
    },
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +evidence-proxy-0\.jsonl is not a regular file\n/,
  },
  {
    what: 'a file the engine does not write added to evidence/',
    change: (dir) => writeFileSync(join(dir, 'evidence', 'notes.txt'), 'approved\n'),
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +holds notes\.txt, which the engine does not write\n/,
  },
  {
    what: 'a shard added to evidence/',
    change: (dir) => writeFileSync(join(dir, 'evidence', 'evidence-proxy-100.jsonl'), '{}\n'),
    statuses: { 'evidence/': 'MISMATCH' },
    says: /\n {2}MISMATCH +evidence\/ +evidence-proxy-100\.jsonl and evidence\.jsonl differ at byte \d+ of evidence\.jsonl\n/,
  },
  {
    what: 'a refusal hidden from summary.md',
    change: (dir) => editText(dir, 'summary.md', '6 block', '5 block'),
    statuses: { 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 6 is "- 32 receipts: 26 allow, 5 block.*", should be "- 32 receipts: 26 allow, 6 block/,
  },
  {
    what: 'a refused request cut out of summary.md',
    change: (dir) => editText(dir, 'summary.md', /- seq 9: [^\n]*\n/, ''),
    statuses: { 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 24 is "- seq 14: .*", should be "- seq 9: POST /,
  },
  {
    what: "packet.json's block count lowered",
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        ((p['summary'] as Record<string, unknown>)['totals'] as Record<string, unknown>)['block'] =
          0;
      }),
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +summary\.totals\.block is 0, should be 6$/m,
  },
  {
    what: "packet.json's verdict raised",
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        (p['verifier'] as Record<string, unknown>)['receipt_count'] = 3;
        (p['policy'] as Record<string, unknown>)['policy_hashes'] = ['0'.repeat(64)];
      }),
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +policy\.policy_hashes\[0\] is "0{64}", should be "[0-9a-f]{64}"; verifier\.receipt_count is 3, should be 32$/m,
  },
  {
    what: 'packet.json naming a signer that did not sign',
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        (p['verifier'] as Record<string, unknown>)['signer_key'] = 'pipelock-ed25519-public-v1 x';
      }),
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +verifier\.signer_key is "pipelock-ed25519-public-v1 x", should be /,
  },
  {
    what: 'a key packet.json does not have',
    change: (dir) => editJson(dir, 'packet.json', (p) => (p['note'] = 'all clear')),
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +note should not be there$/m,
  },
  {
    what: 'packet.json with the same values on one line',
    change: (dir) => {
      const path = join(dir, 'packet.json');
      writeFileSync(path, JSON.stringify(JSON.parse(readFileSync(path, 'utf8'))));
    },
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +the same values, but not written as a run writes them/,
  },
  {
    what: "packet.json's run statement of another exit code: the summary no longer agrees",
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        (p['run'] as Record<string, unknown>)['agent_exit_code'] = 0 + 7;
      }),
    statuses: { 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 5 is "- Agent `agent <ci>` exited with 0", should be ".*exited with 7"/,
  },
  {
    what: 'another agent named, in packet.json and summary.md alike',
    change: (dir) => {
      editJson(dir, 'packet.json', (p) => {
        (p['run'] as Record<string, unknown>)['agent_identity'] = 'release-bot';
      });
      editText(dir, 'summary.md', '`agent <ci>`', '`release-bot`');
    },
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +its run, posture and policy\.config_path are not those the chain was opened for: the session open binds run capsule [0-9a-f]{64}, packet\.json gives [0-9a-f]{64}$/m,
  },
  {
    what: 'the packet of one repository passed off as another',
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        (p['run'] as Record<string, unknown>)['repository'] = 'acme/payments';
      }),
    statuses: { 'packet.json': 'MISMATCH' },
    says: /packet\.json +its run, posture and policy\.config_path are not those the chain was opened for: the session open binds run capsule [0-9a-f]{64}, packet\.json gives [0-9a-f]{64}$/m,
  },
  {
    what: 'summary.md changed in a packet another version wrote',
    change: (dir) => {
      editJson(dir, 'packet.json', (p) => {
        (p['posture'] as Record<string, unknown>)['engine'] = 'pipelock-egress 0.0.1';
      });
      editText(dir, 'summary.md', '6 block', '5 block');
    },
    statuses: { 'packet.json': 'MISMATCH', 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 6 .* \(written by pipelock-egress 0\.0\.1, remade by pipelock-egress \d+\.\d+\.\d+: check it with pipelock-egress 0\.0\.1 before calling it changed\)$/m,
  },
  {
    what: 'a run statement of the wrong type',
    change: (dir) =>
      editJson(dir, 'packet.json', (p) => {
        (p['posture'] as Record<string, unknown>)['agent_uid'] = 'root';
      }),
    statuses: { 'packet.json': 'MISMATCH', 'summary.md': 'UNCHECKED' },
    says: /packet\.json +not as a run writes it: posture\.agent_uid: .*number/,
  },
  {
    what: 'an engine.log that says requests were refused unrecorded, added after the summary',
    change: (dir) =>
      writeFileSync(
        join(dir, 'engine.log'),
        '{"event":"evidence_error","message":"the evidence is full"}\n',
      ),
    statuses: { 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 8 is "", should be "- ⚠️ 1 requests were refused without a receipt/,
  },
  {
    what: 'summary.md removed',
    change: (dir) => rmSync(join(dir, 'summary.md')),
    statuses: { 'summary.md': 'MISSING' },
    says: /summary\.md +not in the packet/,
  },
  {
    what: 'packet.json removed',
    change: (dir) => rmSync(join(dir, 'packet.json')),
    statuses: { 'packet.json': 'MISSING', 'summary.md': 'UNCHECKED' },
    says: /summary\.md +needs packet\.json's run/,
  },
  {
    // Fields packet.json and summary.md do not quote: only the report itself says them.
    what: 'verification-report.json disagreeing with the chain on fields beyond its counts',
    change: (dir) =>
      editJson(dir, 'verification-report.json', (r) => {
        r['trusted'] = false;
        r['end_time'] = '2026-11-26T23:00:00Z';
        r['signer_keys'] = ['ab'.repeat(32)];
        r['policy_hashes'] = ['0'.repeat(64)];
        r['policy_hash_match'] = null;
        r['broken_at_seq'] = 3;
        r['torn_tail'] = { where: 'evidence.jsonl: line 40', bytes: 3 };
      }),
    statuses: { 'verification-report.json': 'MISMATCH' },
    says: new RegExp(
      [
        'verification-report\\.json +trusted false, verified true',
        'end_time 2026-11-26T23:00:00Z, verified 2026-11-26T22:00:00\\.217Z',
        `signer_keys \\["(ab){32}"\\], verified \\["${SAMPLE_KEY}"\\]`,
        'policy_hashes \\["0{64}"\\], verified \\["[0-9a-f]{64}"\\]',
        'policy_hash_match null, verified true',
        'broken_at_seq 3, verified null',
        'torn_tail \\{"where":"evidence\\.jsonl: line 40","bytes":3\\}, verified null\\n',
      ].join('; '),
    ),
  },
  {
    what: 'verification-report.json recording a worse verdict than the chain has',
    change: (dir) =>
      editJson(dir, 'verification-report.json', (r) => {
        r['verdict'] = 'invalid';
        r['trusted'] = false;
        r['error'] = 'chain is not sealed';
      }),
    statuses: {
      'verification-report.json': 'MISMATCH',
      'packet.json': 'MISMATCH',
      'summary.md': 'MISMATCH',
    },
    says: /verification-report\.json +verdict invalid, verified valid; trusted false, verified true; error chain is not sealed, verified null\n/,
  },
  {
    what: 'verification-report.json not a report',
    change: (dir) =>
      editJson(dir, 'verification-report.json', (r) => {
        r['verdict'] = 'trusted';
      }),
    statuses: {
      'verification-report.json': 'MISMATCH',
      'packet.json': 'UNCHECKED',
      'summary.md': 'UNCHECKED',
    },
    says: /verification-report\.json +verdict: Invalid option/,
  },
  {
    what: 'engine.log a directory',
    change: (dir) => {
      rmSync(join(dir, 'engine.log'));
      mkdirSync(join(dir, 'engine.log'));
    },
    statuses: { 'packet.json': 'UNCHECKED', 'summary.md': 'UNCHECKED', 'engine.log': 'MISMATCH' },
    says: /packet\.json +needs engine\.log: not a regular file\n.*\n {2}MISMATCH +engine\.log +not a regular file/,
  },
  {
    // Sparse: never read, so it costs nothing; read by lines it would end the process.
    what: 'engine.log of 1 GiB without a newline, more than the engine writes',
    change: (dir) => truncateSync(join(dir, 'engine.log'), 2 ** 30),
    statuses: { 'packet.json': 'UNCHECKED', 'summary.md': 'UNCHECKED', 'engine.log': 'MISMATCH' },
    says: /\n {2}MISMATCH +engine\.log +1073741824 bytes, more than the engine writes \(68157440: a log of at most 64 MiB, then two closing lines\); not read\n/,
  },
  {
    what: "a file no run writes added beside the packet's own",
    change: (dir) => writeFileSync(join(dir, 'NOTES.md'), 'approved by security\n'),
    statuses: { './': 'MISMATCH' },
    says: /\n {2}MISMATCH +\.\/ +holds NOTES\.md, which no run writes\n/,
  },
  {
    what: 'policy.yaml a symbolic link to an identical copy',
    change: (dir) => {
      const copy = join(dir, '..', 'policy-copy.yaml');
      execFileSync('cp', [join(dir, 'policy.yaml'), copy]);
      rmSync(join(dir, 'policy.yaml'));
      symlinkSync(copy, join(dir, 'policy.yaml'));
    },
    statuses: { 'policy.yaml': 'MISMATCH', 'packet.json': 'UNCHECKED', 'summary.md': 'UNCHECKED' },
    says: /\n {2}MISMATCH +policy\.yaml +a symbolic link, not a regular file\n/,
  },
  {
    what: 'engine.log removed',
    change: (dir) => rmSync(join(dir, 'engine.log')),
    statuses: { 'packet.json': 'UNCHECKED', 'summary.md': 'UNCHECKED', 'engine.log': 'MISSING' },
    says: /packet\.json +needs engine\.log, which is not in the packet\n.*\n {2}MISSING +engine\.log +not in the packet/,
  },
  {
    what: 'a refusal turned into an allow in receipts.json',
    change: (dir) => editText(dir, 'receipts.json', '"verdict":"block"', '"verdict":"allow"'),
    statuses: { 'receipts.json': 'MISMATCH' },
    says: /receipts\.json +is not the receipts of evidence\.jsonl/,
  },
  {
    // Not read: a file of another length than the chain's receipts make is not them.
    what: 'receipts.json grown to 20 GiB (sparse)',
    change: (dir) => truncateSync(join(dir, 'receipts.json'), 20 * 2 ** 30),
    statuses: { 'receipts.json': 'MISMATCH' },
    says: /receipts\.json +is not the receipts of evidence\.jsonl \(21474836480 bytes where they make \d+\)/,
  },
  {
    what: 'verification-report.json naming its verdict twice (readers keep the first or the last)',
    change: (dir) => editText(dir, 'verification-report.json', /^\{/, '{"verdict":"invalid",'),
    statuses: {
      'verification-report.json': 'MISMATCH',
      'packet.json': 'UNCHECKED',
      'summary.md': 'UNCHECKED',
    },
    says: /verification-report\.json +not JSON: invalid JSON at offset 24: duplicate key "verdict"\n/,
  },
  {
    what: 'summary.md with a byte-order mark in front',
    change: (dir) =>
      writeFileSync(
        join(dir, 'summary.md'),
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(join(dir, 'summary.md'))]),
      ),
    statuses: { 'summary.md': 'MISMATCH' },
    says: /summary\.md +line 1 is "\\ufeff# Agent egress: Audit Packet", should be "# Agent egress: Audit Packet"\n/,
  },
];

for (const tamper of TAMPERS) {
  test(`tampered: ${tamper.what}: PACKET INVALID, exit 1, the file named`, async () => {
    const dir = packetCopy(tamper.change);
    const out = join(dir, '..', 'report.json');
    const { code, stdout } = await verify(dir, '--output', out);
    assert.equal(code, 1, stdout);
    // The chain itself still verifies: the verdict is the packet's.
    assert.match(stdout, /^CHAIN VALID: /);
    assert.match(stdout, /\nPACKET INVALID: /);
    assert.deepEqual(statuses(stdout), { ...ALL_OK, ...tamper.statuses });
    assert.match(stdout, tamper.says);
    const failing = Object.keys(tamper.statuses);
    assert.match(
      stdout,
      new RegExp(`\\n {2}Error: the packet's ${failing.join(', ').replace(/\./g, '\\.')} do`),
    );
    const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    assert.equal(report['verdict'], 'invalid');
    assert.equal(report['trusted'], false);
    assert.match(String(report['error']), /do(es)? not match the verified chain$/);
  });
}

test('what a packet quotes reaches the terminal escaped: no control or bidi character is printed raw', async () => {
  const hostile = '\u001b]0;owned\u0007\u202e';
  const dir = packetCopy((d) => {
    editJson(d, 'packet.json', (p) => (p[hostile] = 1));
    editText(d, 'summary.md', '# Agent egress', `# ${hostile}`);
  });
  const { code, stdout } = await verify(dir);
  assert.equal(code, 1);
  // eslint-disable-next-line no-control-regex -- the raw characters must not be there
  assert.doesNotMatch(stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
  assert.match(stdout, /packet\.json +\\u001b\]0;owned\\u0007\\u202e should not be there/);
  assert.match(
    stdout,
    /summary\.md +line 1 is "# \\u001b\]0;owned\\u0007\\u202e: Audit Packet", should be "# Agent egress: Audit Packet"$/m,
  );
});

/** Every value in packet.json, by its path. */
function leaves(value: unknown, path = ''): [string, unknown][] {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      leaves(item, Array.isArray(value) ? `${path}[${key}]` : path ? `${path}.${key}` : key),
    );
  }
  return [[path, value]];
}

function setAt(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  const last = keys.pop() ?? '';
  let at = root as Record<string, unknown>;
  for (const key of keys) at = at[key] as Record<string, unknown>;
  at[last] = value;
}

function changed(value: unknown): unknown {
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  return `${String(value)}x`;
}

/** What packet.json states and no receipt can confirm: the runner's own word. */
const STATEMENTS =
  /^(generated_at|run\.(started_at|completed_at)|posture\.(agent_user|agent_uid|host_user|host_uid|proxy_url))$/;

test('every value of packet.json is checked against the chain, except the times, users and proxy address of the run', async () => {
  const original = JSON.parse(readFileSync(join(pristine, 'packet.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const paths = leaves(original);
  assert.ok(paths.length > 40, `${paths.length} values`);
  const uncaught: string[] = [];
  for (const [path, value] of paths) {
    const dir = packetCopy((d) =>
      editJson(d, 'packet.json', (p) => setAt(p, path, changed(value))),
    );
    const { code, stdout } = await verify(dir);
    if (STATEMENTS.test(path)) {
      // Accepted as stated: the packet says so on every check ("the runner's own statements").
      assert.equal(code, 0, `${path}: ${stdout}`);
    } else if (code === 0) {
      uncaught.push(path);
    }
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
  assert.deepEqual(uncaught, []);
});

test('any byte of summary.md changed: PACKET INVALID (random positions)', async () => {
  const text = readFileSync(join(pristine, 'summary.md'));
  for (let i = 0; i < 25; i++) {
    const at = Math.floor(Math.random() * text.length);
    const dir = packetCopy((d) => {
      const copy = Buffer.from(text);
      copy[at] = (copy[at] ?? 0) ^ (1 << Math.floor(Math.random() * 8));
      writeFileSync(join(d, 'summary.md'), copy);
    });
    const { code, stdout } = await verify(dir);
    assert.equal(code, 1, `byte ${at}`);
    assert.equal(statuses(stdout)['summary.md'], 'MISMATCH', `byte ${at}: ${stdout}`);
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

test('a chain changed after signing: CHAIN BROKEN, the derived files not checked against it', async () => {
  const dir = packetCopy((d) => editText(d, 'evidence.jsonl', 'page=12\\u0026', 'page=13\\u0026'));
  const { code, stdout } = await verify(dir);
  assert.equal(code, 1);
  assert.match(stdout, /^CHAIN BROKEN: /);
  assert.match(stdout, /\nPACKET INVALID: /);
  const found = statuses(stdout);
  assert.equal(found['evidence.jsonl'], 'MISMATCH');
  assert.equal(found['packet.json'], 'UNCHECKED');
  assert.equal(found['summary.md'], 'UNCHECKED');
  assert.match(stdout, /packet\.json +the chain in evidence\.jsonl does not verify/);
});

test('evidence.jsonl cut after its session_close (seal removed): CHAIN BROKEN', async () => {
  const dir = packetCopy((d) => {
    const lines = readFileSync(join(d, 'evidence.jsonl'), 'utf8').split(/(?<=\n)/);
    writeFileSync(join(d, 'evidence.jsonl'), lines.slice(0, -2).join(''));
  });
  const { code, stdout } = await verify(dir);
  assert.equal(code, 1);
  assert.match(
    stdout,
    /^CHAIN BROKEN: .*\n {2}Error: {4}the session_close is not followed by a transcript_root/,
  );
  assert.match(stdout, /\nPACKET INVALID: /);
});

test("evidence/ as the engine leaves it: its files in numeric order, and the run CA's certificate", async () => {
  const dir = packetCopy((d) => {
    const lines = readFileSync(join(d, EVIDENCE_FILE), 'utf8').split(/(?<=\n)/);
    rmSync(join(d, EVIDENCE_FILE));
    // In text order 10 comes before 9: only the numeric order joins them as evidence.jsonl.
    const parts = [lines.slice(0, 3), lines.slice(3, 20), lines.slice(20)];
    parts.forEach((part, i) =>
      writeFileSync(join(d, 'evidence', `evidence-proxy-${[0, 9, 10][i]}.jsonl`), part.join('')),
    );
    writeFileSync(join(d, 'evidence', 'run-ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  });
  const { code, stdout } = await verify(dir);
  assert.equal(code, 0, stdout);
  assert.match(
    stdout,
    /\n {2}ok +evidence\/ +evidence-proxy-0\.jsonl … evidence-proxy-10\.jsonl \(3 files\), joined in order, are evidence\.jsonl byte for byte\n/,
  );
  const longer = packetCopy((d) => writeFileSync(join(d, 'evidence.jsonl'), '\n', { flag: 'a' }));
  const extra = await verify(longer);
  assert.equal(extra.code, 1);
  assert.match(
    extra.stdout,
    /\n {2}MISMATCH +evidence\/ +evidence\.jsonl goes on for 1 bytes after the last file, evidence-proxy-0\.jsonl\n/,
  );
});

test("--policy-hash: the reviewer's own hash of the policy they read, instead of the packet's", async () => {
  const own = join(scratchDir('pe-verify-packet-'), 'reviewed-hash.txt');
  writeFileSync(own, readFileSync(join(pristine, 'policy-hash.txt')));
  const same = await verify(pristine, '--policy-hash', own);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /\nPACKET VALID: /);
  writeFileSync(own, `${'0'.repeat(64)}\n`);
  const other = await verify(pristine, '--policy-hash', own);
  assert.equal(other.code, 1);
  assert.match(
    other.stdout,
    /\nPOLICY MISMATCH: receipts carry policy_hash [0-9a-f]{64}; expected 0{64}\n/,
  );
  assert.match(other.stdout, /\nPACKET INVALID: /);
  assert.match(
    other.stdout,
    /\n {2}Error: policy hash mismatch: receipts carry [0-9a-f]{64}, expected 0{64}\n/,
  );
  const unreadable = await verify(pristine, '--policy-hash', join(pristine, 'evidence'));
  assert.equal(unreadable.code, 2);
  assert.match(unreadable.stderr, /cannot read policy hash .*evidence: not a regular file/);
});

test("--output may write the packet's own verification report again, nothing else inside the packet", async () => {
  const dir = packetCopy();
  const own = join(dir, 'verification-report.json');
  const again = await verify(dir, '--output', own);
  assert.equal(again.code, 0, again.stderr);
  for (const inside of [
    join(dir, 'evidence', 'verification-report.json'),
    join(dir, 'notes.json'),
  ]) {
    const refused = await verify(dir, '--output', inside);
    assert.equal(refused.code, 2, inside);
    assert.match(
      refused.stderr,
      /would write into .*, which is being verified; write the report elsewhere/,
    );
  }
});

test('usage: --packet alone says what it takes from the packet; a missing or empty directory exits 2', async () => {
  for (const [option, reason] of [
    ['--receipt-chain', "the chain is the packet's evidence.jsonl"],
    ['--session-id', 'a packet holds one recorder session'],
  ] as const) {
    const { code, stderr } = await cli('verify', '--packet', pristine, option, 'x');
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`${option} does not go with --packet: ${reason}`));
  }
  // The implied flags are accepted as given.
  const implied = await verify(pristine, '--require-sealed', '--whole-recorder');
  assert.equal(implied.code, 0, implied.stderr);
  const none = await cli('verify');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--receipt-chain PATH \(or --packet DIR\) is required/);
  const missing = await verify(join(pristine, 'nowhere'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nowhere is not a directory: give the Audit Packet directory/);
  const empty = scratchDir('pe-verify-packet-');
  const out = join(scratchDir('pe-verify-packet-'), 'report.json');
  const bare = await verify(empty, '--output', out);
  assert.equal(bare.code, 2);
  assert.match(
    bare.stderr,
    /holds no evidence\.jsonl: give the directory a run wrote its Audit Packet to/,
  );
  const report = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
  assert.equal(report['verdict'], 'error');
  assert.deepEqual(report['files'], []);
});

test('differences are named by their path in the document, at most three', () => {
  assert.deepEqual(jsonDifferences({ a: { b: [1, 2] }, c: 1 }, { a: { b: [1, 3] }, c: 1 }), [
    'a.b[1] is 2, should be 3',
  ]);
  assert.deepEqual(jsonDifferences({ a: 1 }, { b: 1 }), ['b is missing', 'a should not be there']);
  assert.deepEqual(jsonDifferences({ a: [1] }, { a: [1, 2] }), ['a is [1], should be [1,2]']);
  assert.deepEqual(jsonDifferences(1, 'x'), ['the document is 1, should be "x"']);
  assert.equal(jsonDifferences({ a: 1, b: 2, c: 3, d: 4 }, { a: 0, b: 0, c: 0, d: 0 }).length, 3);
  assert.deepEqual(jsonDifferences({ a: { b: 1 } }, { a: { b: 1 } }), []);
});

test("the packet's verdict: the chain's, unless a file disagrees; a broken chain stays its own verdict", () => {
  const ok = (file: string): FileCheck => ({ file, status: 'ok', detail: '' });
  const bad = (file: string): FileCheck => ({ file, status: 'mismatch', detail: '' });
  const valid = { verdict: 'valid', code: 0, policyHashMatch: true } as const;
  assert.deepEqual(packetVerdict(valid, [ok('a'), ok('b')]), { verdict: 'valid' });
  assert.deepEqual(packetVerdict(valid, [ok('a'), bad('b')]), {
    verdict: 'invalid',
    error: "the packet's b does not match the verified chain",
  });
  assert.deepEqual(
    packetVerdict({ ...valid, verdict: 'self_consistent_only' }, [
      { file: 'c', status: 'unchecked', detail: '' },
      { file: 'd', status: 'missing', detail: '' },
    ]),
    { verdict: 'invalid', error: "the packet's c, d do not match the verified chain" },
  );
  assert.deepEqual(
    packetVerdict({ verdict: 'invalid', code: 1, policyHashMatch: null, error: 'broken' }, [
      bad('a'),
    ]),
    { verdict: 'invalid', error: 'broken' },
  );
});
