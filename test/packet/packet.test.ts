// The Audit Packet's pure parts: counting a chain, packet.json against the v0 schema (written
// from the spec into this folder), the summary's Markdown.
import { test } from 'node:test';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePacketReport } from '../../src/packet/write-packet.js';
import assert from 'node:assert/strict';
import type { Receipt } from '../../src/receipts/index.js';
import type { VerificationReport } from '../../src/cli/verification-report.js';
import { destinationOf, hostOf, summarizeChain } from '../../src/packet/summarize.js';
import { parsePolicy } from '../../src/policy/index.js';
import { encodeSorted, packetJson, packetRunFromEnv } from '../../src/packet/packet-json.js';
import { summaryMarkdown } from '../../src/packet/summary-md.js';
import { EngineLogTally } from '../../src/packet/engine-log.js';
import { validatePacket } from './schema.js';
import { scratchDir } from '../scratch.js';

function receipt(seq: number, fields: Record<string, unknown>): Receipt {
  return {
    version: 1,
    signature: 'ed25519:00',
    signer_key: 'ab',
    action_record: {
      policy_hash: 'p1',
      transport: 'forward',
      chain_seq: BigInt(seq),
      ...fields,
    },
  } as unknown as Receipt;
}

const chain: Receipt[] = [
  receipt(0, { verdict: 'allow', transport: 'receipt_session', target: 'session' }),
  receipt(1, { verdict: 'allow', method: 'GET', target: 'https://api.github.com/repos/a/b' }),
  receipt(2, {
    verdict: 'block',
    method: 'POST',
    target: 'https://api.github.com/x',
    layer: 'method',
    pattern: 'method POST is not allowed',
  }),
  receipt(3, {
    verdict: 'block',
    method: 'CONNECT',
    transport: 'connect',
    target: 'exfil.example:443',
    layer: 'destination',
    pattern: 'no rule allows exfil.example',
  }),
  receipt(4, {
    verdict: 'allow',
    transport: 'connect',
    decision_phase: 'outcome',
    target: 'registry.npmjs.org:443',
  }),
  receipt(5, {
    verdict: 'warn',
    method: 'GET',
    target: 'http://[2001:db8::1]:8080/a',
    layer: 'destination',
    pattern: 'audit',
  }),
  receipt(6, { verdict: 'surprise', method: 'GET', target: 'http://127.0.0.1:9/x' }),
  receipt(7, { verdict: 'allow', transport: 'receipt_session', target: 'session' }),
];

test('destinations and hosts: URLs give host:port, CONNECT targets are already authorities', () => {
  assert.equal(destinationOf('https://api.github.com/repos/a'), 'api.github.com');
  assert.equal(destinationOf('http://127.0.0.1:18080/p'), '127.0.0.1:18080');
  assert.equal(destinationOf('exfil.example:443'), 'exfil.example:443');
  assert.equal(hostOf('exfil.example:443'), 'exfil.example');
  assert.equal(hostOf('[2001:db8::1]:8080'), '2001:db8::1');
  // A host named http is no URL: `http:43221` is a CONNECT authority, not http://0.0.168.213/.
  assert.equal(destinationOf('http:43221'), 'http:43221');
  assert.equal(destinationOf('wss:8443'), 'wss:8443');
});

test('summary: totals sum to the receipt count, unknown verdicts count as other, blocks per layer', () => {
  const summary = summarizeChain(chain);
  assert.equal(summary.receiptCount, 8);
  assert.deepEqual(summary.totals, {
    allow: 4,
    block: 2,
    warn: 1,
    ask: 0,
    strip: 0,
    forward: 0,
    redirect: 0,
    other: 1,
  });
  assert.equal(
    Object.values(summary.totals).reduce((a, b) => a + b, 0),
    summary.receiptCount,
  );
  assert.deepEqual(summary.layers, { method: 1, destination: 1 });
  assert.deepEqual(summary.transports, { receipt_session: 2, forward: 4, connect: 2 });
  assert.deepEqual(summary.domains, [
    '127.0.0.1',
    '2001:db8::1',
    'api.github.com',
    'exfil.example',
  ]);
  assert.deepEqual(
    summary.destinations.map((d) => [
      d.destination,
      d.allowed,
      d.blocked,
      d.warned,
      [...d.methods].sort().join(','),
    ]),
    [
      ['127.0.0.1:9', 0, 1, 0, 'GET'],
      ['[2001:db8::1]:8080', 0, 0, 1, 'GET'],
      ['api.github.com', 1, 1, 0, 'GET,POST'],
      ['exfil.example:443', 0, 1, 0, 'CONNECT'],
    ],
  );
  assert.deepEqual(
    summary.refused.map((r) => r.seq),
    [2n, 3n, 5n, 6n],
  );
  assert.deepEqual(summary.policyHashes, ['p1']);
});

const report = (verdict: VerificationReport['verdict']): VerificationReport => ({
  verdict,
  trusted: verdict === 'valid',
  sealed: true,
  receipt_count: 8,
  final_seq: 7n,
  root_hash: 'aa',
  start_time: '2026-11-27T00:00:00Z',
  end_time: '2026-11-27T00:00:01Z',
  signer_keys: ['ab'],
  policy_hashes: ['p1'],
  policy_hash_match: true,
  broken_at_seq: null,
  torn_tail: null,
  error: verdict === 'invalid' ? 'chain_prev_hash mismatch' : null,
});

const RUN = {
  ...packetRunFromEnv({
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'acme/widgets',
    GITHUB_RUN_ID: '42',
    GITHUB_SHA: '',
  }),
  agentIdentity: 'triage-bot',
  startedAt: '2026-11-27T00:00:00.000Z',
  completedAt: '2026-11-27T00:00:01.000Z',
  agentExitCode: 0,
};

const POSTURE = {
  engine: 'pipelock-egress 0.1.0',
  runnerOs: 'Linux',
  networkNamespace: 'pe-0123456789',
  agentUser: 'pipelock-agent',
  agentUid: 998,
  hostUser: 'pipelock-host',
  hostUid: 997,
  proxyUrl: 'http://127.0.0.1:40000',
  scriptBasename: 'agent.sh',
  scriptArgCount: 2,
};

function packetFor(
  verdict: VerificationReport['verdict'],
  pinned: boolean,
): Record<string, unknown> {
  return packetJson({
    generatedAt: '2026-11-27T00:00:02.000Z',
    run: RUN,
    summary: summarizeChain(chain),
    report: report(verdict),
    ...(pinned ? { pinnedKey: 'pipelock-ed25519-public-v1:abc' } : {}),
    posture: POSTURE,
    policy: { path: 'policy.yaml', mode: 'enforce', dlpPatterns: 1, websocketFrameScan: true },
  });
}

test('the provider: GitHub Actions when GITHUB_ACTIONS says true in any case, self-hosted as the runner says, else local', () => {
  assert.equal(packetRunFromEnv({ GITHUB_ACTIONS: 'True' }).provider, 'github_actions');
  assert.equal(
    packetRunFromEnv({ GITHUB_ACTIONS: 'true', RUNNER_ENVIRONMENT: 'self-hosted' }).provider,
    'self_hosted',
  );
  assert.equal(packetRunFromEnv({ GITHUB_ACTIONS: 'false' }).provider, 'local');
  assert.equal(packetRunFromEnv({}).provider, 'local');
});

test('packet.json validates against the v0 schema for every verdict, trusted only with a pinned key', () => {
  for (const [verdict, pinned] of [
    ['valid', true],
    ['self_consistent_only', false],
    ['invalid', true],
    ['error', false],
  ] as const) {
    const packet = packetFor(verdict, pinned);
    assert.ok(validatePacket(packet), `${verdict}: ${JSON.stringify(validatePacket.errors)}`);
    const verifier = packet['verifier'] as Record<string, unknown>;
    assert.equal(verifier['trusted'], verdict === 'valid');
    assert.equal('signer_key' in verifier, pinned);
  }
  // As the reference: the pinned key is named where it decided the verdict, not for no evidence.
  assert.equal('signer_key' in (packetFor('error', true)['verifier'] as object), false);
  // Times to the second, as the reference writes them.
  const timed = packetFor('valid', true);
  assert.equal(timed['generated_at'], '2026-11-27T00:00:02Z');
  const times = timed['run'] as Record<string, unknown>;
  for (const field of ['started_at', 'completed_at'])
    assert.match(String(times[field]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, field);
  const run = packetFor('valid', true)['run'] as Record<string, unknown>;
  assert.equal(run['provider'], 'github_actions');
  assert.equal(run['repository'], 'acme/widgets');
  assert.equal('sha' in run, false, 'empty variables are left out');
  const posture = packetFor('valid', true)['posture'] as Record<string, unknown>;
  assert.equal(posture['websocket_frame_scanning'], 'explicit_ws_proxy_path_required');
});

test('the schema is strict enough to catch a lie: trusted without a valid verdict fails', () => {
  const packet = packetFor('self_consistent_only', false);
  (packet['verifier'] as Record<string, unknown>)['trusted'] = true;
  assert.equal(validatePacket(packet), false);
});

test('packet.json is written with sorted keys', () => {
  const text = encodeSorted({ b: 1, a: { d: 2, c: [{ f: 1, e: 2 }] } });
  assert.equal(
    text,
    '{\n  "a": {\n    "c": [\n      {\n        "e": 2,\n        "f": 1\n      }\n    ],\n    "d": 2\n  },\n  "b": 1\n}\n',
  );
});

test('summary.md: the verdict first, the destinations, every refusal, and the verify command', () => {
  const markdown = summaryMarkdown({
    report: report('self_consistent_only'),
    summary: summarizeChain(chain),
    agentExitCode: 3,
    agentIdentity: 'triage-bot',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: ['ssh_egress'],
  });
  const lines = markdown.split('\n');
  assert.equal(lines[0], '# Agent egress: Audit Packet');
  assert.match(lines[2] ?? '', /^⚠️ \*\*self-consistent only\*\*/);
  assert.match(markdown, /exited with 3/);
  assert.match(markdown, /\| `api\.github\.com` \| 1 \| 1 \| GET POST \|/);
  assert.match(
    markdown,
    /- seq 3: CONNECT `exfil\.example:443`: destination: `no rule allows exfil\.example`/,
  );
  assert.match(
    markdown,
    /```sh\npipelock-egress verify --packet \. --public-key <your pinned public key>\n```/,
  );
  assert.match(
    markdown,
    /```sh\npipelock-egress verify --receipt-chain evidence\.jsonl --policy-hash policy-hash\.txt --public-key <your pinned public key> --require-sealed --whole-recorder\n```/,
  );
  assert.match(
    markdown,
    /```sh\npipelock-egress view \. --public-key <your pinned public key>\n```/,
  );
  assert.doesNotMatch(markdown, /would have allowed/);
});

test('summary.md: what the agent chose (targets, reasons) stays inert code, and the list stays short', () => {
  const hostile = 'http://a.test/z?``[**All verified**](https://example.invalid/phish)``';
  const refusals = Array.from({ length: 250 }, (_, i) =>
    receipt(i + 1, {
      verdict: 'block',
      method: 'GET',
      target: i === 0 ? hostile : `http://b.test/${'x'.repeat(i === 1 ? 12_000 : 1)}`,
      layer: 'path',
      pattern:
        i === 0 ? 'path <img src=x onerror=alert(1)> [x](https://e.invalid) is outside `a`' : 'p',
    }),
  );
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain(refusals),
    agentExitCode: 0,
    agentIdentity: 'a`b',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  const lines = markdown.split('\n');
  // The fence is longer than the longest run of backticks inside, and padded.
  assert.ok(
    lines.includes(
      `- seq 1: GET \`\`\` ${hostile} \`\`\`: path: \`\` path <img src=x onerror=alert(1)> [x](https://e.invalid) is outside \`a\` \`\``,
    ),
  );
  assert.match(markdown, /- Agent `` a`b `` exited/);
  const long = lines.find((line) => line.startsWith('- seq 2:')) ?? '';
  assert.ok(long.length < 600 && long.includes('x…`'), long.slice(0, 80));
  assert.equal(lines.filter((line) => line.startsWith('- seq ')).length, 200);
  assert.ok(lines.includes('- … and 50 more, each in `receipts.json`'));
});

test('summary.md: a method or layer that is not a plain word (a crafted packet) stays inert code', () => {
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain([
      receipt(1, {
        verdict: 'block',
        method: 'GET\r\n## All verified|',
        target: 'http://a.test/',
        layer: '<img src=x onerror=alert(1)>\u001b]8;;https://e.invalid\u0007',
        pattern: 'p',
      }),
    ]),
    agentExitCode: 0,
    agentIdentity: 'agent',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  const lines = markdown.split('\n');
  assert.ok(!markdown.includes('\u001b') && !markdown.includes('\r'), markdown);
  assert.ok(lines.includes('| `a.test` | 0 | 1 | `GET ## All verified\\|` |'), markdown);
  assert.ok(
    lines.some((line) =>
      line.startsWith(
        '- seq 1: `GET ## All verified|` `http://a.test/`: `<img src=x onerror=alert(1)>',
      ),
    ),
    markdown,
  );
});

test('summary.md: no character of a target ends its line or hides (a lone CR, bidi, zero width), and the destinations stay few', () => {
  const forged = 'ws://zz.test/\r## Blocked\r\rNothing.\u202e\u200b\u00ad\u3164';
  const refused = Array.from({ length: 240 }, (_, i) =>
    receipt(i + 1, {
      verdict: 'block',
      method: 'GET',
      target: i === 0 ? forged : `http://h${String(i).padStart(3, '0')}.test/`,
      layer: 'destination',
      pattern: 'no egress rule allows it',
    }),
  );
  const reached = receipt(241, { verdict: 'allow', method: 'GET', target: 'http://zzz.test/' });
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain([...refused, reached]),
    agentExitCode: 0,
    agentIdentity: 'a',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  assert.ok(
    markdown.includes(
      '- seq 1: GET `ws://zz.test/\\u000d## Blocked\\u000d\\u000dNothing.\\u202e\\u200b\\u00ad\\u3164`: destination',
    ),
  );
  assert.doesNotMatch(markdown, /\r|\u202e|\u200b|\u00ad|\u3164/);
  const rows = markdown.split('\n').filter((line) => /^\| `/.test(line));
  assert.equal(rows.length, 200);
  // What the agent reached is listed first when not all fit.
  assert.ok(
    rows.some((row) => row.startsWith('| `zzz.test` | 1 |')),
    rows.at(-1),
  );
  assert.ok(markdown.includes('… and 41 more destinations, each in `receipts.json`'));
});

test('summary.md in audit mode tells blocks from would-be blocks, and proposes rules for what passed', () => {
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain(chain),
    agentExitCode: 0,
    agentIdentity: 'a',
    policyMode: 'audit',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  const section = (title: string) => markdown.split(`\n## ${title}\n\n`)[1]?.split('\n\n')[1];
  // What audit mode blocked all the same, then what it let through with a warning.
  assert.ok(markdown.includes('\n## Blocked\n\nBlocked in audit mode too:\n\n- seq 2: POST'));
  assert.deepEqual(
    section('Blocked')
      ?.split('\n')
      .map((line) => line.split(':')[0]),
    ['- seq 2', '- seq 3', '- seq 6'],
  );
  assert.match(
    markdown,
    /\n## Would have been blocked\n\n- seq 5: GET `http:\/\/\[2001:db8::1\]:8080\/a`: destination: `audit`\n\n/,
  );
  const yaml = /```yaml\n([^]*?)```/.exec(markdown)?.[1] ?? '';
  assert.equal(
    yaml,
    [
      'version: "1.0"',
      'mode: enforce',
      'egress:',
      '  - destination: "[2001:db8::1]:8080"',
      '    methods: ["GET"]',
      '  - destination: "api.github.com:443"',
      '    methods: ["GET"]',
      'default_deny: true',
      '',
    ].join('\n'),
  );
});

test("the audit summary's policy names no malformed target: nothing the agent spelled reaches it raw", () => {
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain([
      ...chain,
      receipt(8, {
        verdict: 'block',
        method: 'WS',
        transport: 'websocket',
        target: 'ws://[\u202emoc.buhtig.ipa//:sptth"',
        layer: 'request',
      }),
      receipt(9, {
        verdict: 'block',
        method: '',
        target: 'pipelock://request/unparsed',
        layer: 'request',
      }),
    ]),
    agentExitCode: 0,
    agentIdentity: 'a',
    policyMode: 'audit',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  const yaml = /```yaml\n([^]*?)```/.exec(markdown)?.[1] ?? '';
  assert.doesNotMatch(yaml, /moc|pipelock:/);
  assert.ok(parsePolicy(Buffer.from(yaml), 'suggested.yaml').ok, yaml);
  assert.doesNotMatch(markdown, /\u202e/);
  // An empty method is no code span: two backticks would open one that swallows the line.
  assert.ok(markdown.includes('- seq 9: — `pipelock://request/unparsed`: request'), markdown);
});

test('summary.md cuts a long target between characters, never inside one, and escapes what renders as nothing', () => {
  const target = `ws://evil.test/${'a'.repeat(484)}\u{1f600}\u034f\u17b4rest`;
  assert.equal(target.charCodeAt(499), 0xd83d);
  const markdown = summaryMarkdown({
    report: report('valid'),
    summary: summarizeChain([
      receipt(1, { verdict: 'block', method: 'WS', target, layer: 'destination', pattern: 'p' }),
      receipt(2, {
        verdict: 'block',
        method: 'WS',
        target: 'ws://a\u034fpi.test\u2800/',
        layer: 'destination',
        pattern: 'p',
      }),
    ]),
    agentExitCode: 0,
    agentIdentity: 'a',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  });
  assert.ok(markdown.includes(`\`ws://evil.test/${'a'.repeat(484)}…\``), markdown);
  assert.doesNotMatch(markdown, /\p{Cs}/u, 'no half of a surrogate pair');
  assert.ok(markdown.includes('`ws://a\\u034fpi.test\u2800/`'), markdown);
});

test('requests refused unrecorded: counted from the engine log and said in summary.md', () => {
  const log = [
    '{"event":"decision","verdict":"allow","method":"GET","target":"http://a.test/","request_id":"req-1"}',
    '{"event":"evidence_error","message":"evidence cannot be written: ENOSPC"}',
    'not json, "evidence_error" in passing',
    '{"event":"decision","reason":"evidence_error is only a word here"}',
    '{"event":"evidence_error","message":"the evidence is full (256 files)"}',
    '',
  ];
  const tally = (lines: readonly string[]) => {
    const counted = new EngineLogTally();
    for (const line of lines) counted.add(line);
    return counted.result();
  };
  const facts = tally(log);
  assert.deepEqual(facts, {
    unrecorded: { count: 2, reason: 'evidence cannot be written: ENOSPC' },
  });
  assert.deepEqual(tally(log.slice(0, 1)), {});
  assert.deepEqual(tally([]), {});
  const input = {
    report: report('valid'),
    summary: summarizeChain(chain),
    agentExitCode: 0,
    agentIdentity: 'a',
    policyMode: 'enforce',
    policyHash: 'f'.repeat(64),
    unsupported: [],
  };
  assert.match(
    summaryMarkdown({ ...input, engineLog: facts }),
    /- ⚠️ 2 requests were refused without a receipt, none of them forwarded: `evidence cannot be written: ENOSPC`/,
  );
  assert.doesNotMatch(summaryMarkdown(input), /without a receipt|engine\.log/);

  // A log cut at its limit: the refusals among the dropped lines still count.
  const cut = [
    ...log,
    '{"event":"log_cut","max_bytes":67108864,"message":"the engine log reached its size limit"}',
    '{"event":"log_dropped","lines":9000,"bytes":2000000,"unrecorded":40,"unrecorded_reason":"the evidence is full (256 files)"}',
  ];
  const cutFacts = tally(cut);
  assert.deepEqual(cutFacts, {
    unrecorded: { count: 42, reason: 'evidence cannot be written: ENOSPC' },
    cut: { maxBytes: 64 * 1024 * 1024, droppedLines: 9000 },
  });
  const cutSummary = summaryMarkdown({ ...input, engineLog: cutFacts });
  assert.match(cutSummary, /- ⚠️ 42 requests were refused without a receipt/);
  assert.match(
    cutSummary,
    /- ⚠️ `engine\.log` stopped at its limit of 64 MiB; 9000 later lines were counted, not kept/,
  );
  // Cut, and the engine never wrote its last line (the run was killed): said so.
  const unended = tally(cut.slice(0, -1));
  assert.deepEqual(unended.cut, { maxBytes: 64 * 1024 * 1024 });
  assert.match(
    summaryMarkdown({ ...input, engineLog: unended }),
    /stopped at its limit of 64 MiB; the engine did not end normally, so what followed was not counted/,
  );
});

test('summary.md as written says what the engine log holds unrecorded; without a log, nothing', async () => {
  const out = scratchDir('pe-packet-');
  try {
    // Packet files are only ever created: each write starts from an output without them.
    const write = () => {
      for (const name of ['packet.json', 'summary.md']) rmSync(join(out, name), { force: true });
      return writePacketReport({
        out,
        summary: summarizeChain(chain),
        report: report('valid'),
        pinnedKey: undefined,
        run: RUN,
        posture: POSTURE,
        policy: {
          path: 'policy.yaml',
          mode: 'enforce',
          dlpPatterns: 0,
          websocketFrameScan: false,
          hash: 'f'.repeat(64),
        },
        generatedAt: '2026-11-27T00:00:02.000Z',
      });
    };
    assert.doesNotMatch(await write(), /without a receipt/);
    const refusal = '{"event":"evidence_error","message":"the evidence is full (256 files)"}\n';
    writeFileSync(join(out, 'engine.log'), refusal.repeat(3));
    assert.match(
      await write(),
      /- ⚠️ 3 requests were refused without a receipt, none of them forwarded: `the evidence is full \(256 files\)/,
    );
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /3 requests were refused/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
