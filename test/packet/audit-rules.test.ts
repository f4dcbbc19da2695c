// The rules an audit run's summary proposes, judged by the policy engine itself: every request
// that passed in audit mode passes them in enforce mode, and what the run did not need does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ActionRecord } from '../../src/receipts/index.js';
import { PassedTrafficTally, suggestedRules } from '../../src/packet/audit-rules.js';
import { decide, decideWebSocket, parsePolicy, type Policy } from '../../src/policy/index.js';

let seq = 0;
/** A receipt's action record as the engine writes it (only the fields the tally reads). */
function record(fields: Partial<ActionRecord>): ActionRecord {
  seq++;
  return {
    chain_seq: BigInt(seq),
    action_id: `action-${seq}`,
    transport: 'forward',
    ...fields,
  } as ActionRecord;
}

/** A tunnel's CONNECT decision, what it carried, and how the engine recorded its end. */
function tunnel(
  id: string,
  target: string,
  end: 'relayed' | 'intercepted' | 'cut' | 'open',
  inner: readonly ActionRecord[] = [],
): ActionRecord[] {
  // One action id for the tunnel's decision, a block that cuts it and its outcome.
  const connect = {
    transport: 'connect',
    method: 'CONNECT',
    target,
    request_id: id,
    action_id: `tunnel-${id}-${target}`,
  } as const;
  const endings: Record<typeof end, ActionRecord[]> = {
    relayed: [
      record({
        ...connect,
        verdict: 'allow',
        decision_phase: 'outcome',
        layer: 'outcome',
        pattern: 'status=200 bytes=512 reason=eof sent=80',
      }),
    ],
    intercepted: [
      record({
        ...connect,
        verdict: 'allow',
        decision_phase: 'outcome',
        layer: 'outcome',
        pattern: `status=200 intercepted_requests=${inner.length} reason=complete`,
      }),
    ],
    cut: [
      record({
        ...connect,
        verdict: 'block',
        layer: 'sni',
        pattern: 'SNI other.test does not match the CONNECT host',
      }),
    ],
    open: [],
  };
  return [
    record({
      ...connect,
      verdict: 'warn',
      decision_phase: 'intent',
      layer: 'destination',
      pattern: 'destination: no rule',
    }),
    ...inner,
    ...endings[end],
  ];
}

const warned = (method: string, target: string, transport = 'forward'): ActionRecord =>
  record({
    verdict: 'warn',
    decision_phase: 'intent',
    method,
    target,
    transport,
    layer: 'destination',
    pattern: 'p',
  });

const auditRun: ActionRecord[] = [
  record({
    verdict: 'allow',
    decision_phase: 'intent',
    method: 'GET',
    target: 'https://api.github.com/repos/a/b',
  }),
  // Blocked in audit mode too: neither its method nor its destination is needed.
  record({ verdict: 'block', method: 'DELETE', target: 'https://api.github.com/x?t=[REDACTED]' }),
  record({ verdict: 'block', method: 'GET', target: 'http://only-blocked.test/', layer: 'dlp' }),
  // Judged as a GET: the rule keeps its methods; WebSockets must be on.
  record({
    verdict: 'warn',
    method: 'WS',
    transport: 'websocket',
    target: 'wss://api.github.com/socket',
    layer: 'destination',
  }),
  ...tunnel('c1', 'exfil.example:443', 'intercepted', [
    warned('GET', 'https://exfil.example/x', 'intercept'),
    record({ verdict: 'block', method: 'PUT', target: 'https://exfil.example/y', layer: 'dlp' }),
  ]),
  ...tunnel('c2', 'dav.example:8443', 'intercepted', [
    warned('PROPFIND', 'https://dav.example:8443/files/', 'intercept'),
  ]),
  ...tunnel('c3', 'opaque.example:443', 'relayed'),
  ...tunnel('c4', 'fronted.test:443', 'cut'),
  ...tunnel('c5', 'unended.test:8443', 'open'),
  // Only requests refused inside: nothing went through.
  ...tunnel('c6', 'refused-inside.test:443', 'intercepted', [
    record({
      verdict: 'block',
      method: 'PUT',
      target: 'https://refused-inside.test/',
      transport: 'intercept',
      layer: 'request',
    }),
  ]),
  // One host over plain HTTP and HTTPS with the same methods: one rule covers both ports.
  warned('GET', 'http://both.test/a'),
  ...tunnel('c7', 'both.test:443', 'intercepted', [
    warned('GET', 'https://both.test/b', 'intercept'),
  ]),
  // Plain HTTP to a host whose tunnel was relayed: the tunnel must stay relayed.
  warned('GET', 'http://mixed.test/'),
  ...tunnel('c8', 'mixed.test:443', 'relayed'),
  // Two spellings of each destination.
  warned('GET', 'http://dot.test./c'),
  warned('POST', 'http://DOT.test:80/d'),
  warned('GET', 'http://127.0.0.1:28082/a'),
  warned('GET', 'http://[::ffff:127.0.0.1]:28082/b'),
];

function suggestedPolicy(records: readonly ActionRecord[]): { yaml: string; policy: Policy } {
  const tally = new PassedTrafficTally();
  for (const r of records) tally.add(r);
  const yaml = `${suggestedRules(tally.passed(), 200).join('\n')}\n`;
  const parsed = parsePolicy(Buffer.from(yaml), 'suggested.yaml');
  assert.ok(parsed.ok, `${yaml}\n${JSON.stringify(parsed.ok ? [] : parsed.errors)}`);
  return { yaml, policy: parsed.policy };
}

function verdict(policy: Policy, method: string, target: string): string {
  return (method === 'WS' ? decideWebSocket(policy, target) : decide(policy, { method, target }))
    .verdict;
}

test('audit rules: every destination, port and method of the run that passed, once per destination', () => {
  const { yaml } = suggestedPolicy(auditRun);
  assert.equal(
    yaml,
    [
      'version: "1.0"',
      'mode: enforce',
      'egress:',
      '  - destination: "127.0.0.1:28082"',
      '    methods: ["GET"]',
      '  - destination: "api.github.com:443"',
      '    methods: ["GET"]',
      '  - destination: "both.test"',
      '    methods: ["GET"]',
      '  - destination: "dav.example:8443"',
      '  - destination: "dot.test:80"',
      '    methods: ["GET", "POST"]',
      '  - destination: "exfil.example:443"',
      '    methods: ["GET"]',
      '  - destination: "mixed.test:80"',
      '    methods: ["GET"]',
      '  - destination: "mixed.test:443"',
      '  - destination: "opaque.example:443"',
      '  - destination: "unended.test:8443"',
      'websocket:',
      '  enabled: true',
      'default_deny: true',
      '',
    ].join('\n'),
  );
});

test('audit rules: in enforce mode they pass every request that passed in audit mode, as it was sent', () => {
  const { policy } = suggestedPolicy(auditRun);
  const passed = auditRun.filter(
    (r) => (r.verdict === 'allow' || r.verdict === 'warn') && r.decision_phase !== 'outcome',
  );
  const cut = new Set(
    auditRun.filter((r) => r.verdict === 'block' && r.method === 'CONNECT').map((r) => r.target),
  );
  for (const { method = '', target } of passed) {
    // A tunnel the engine cut passed nothing, and one whose requests were all refused neither.
    if (cut.has(target) || target === 'refused-inside.test:443') continue;
    assert.equal(verdict(policy, method, target), 'allow', `${method} ${target}`);
  }
});

test('audit rules: nothing the run did not need passes them', () => {
  const { policy } = suggestedPolicy(auditRun);
  for (const [method, target] of [
    // Methods seen only in requests audit mode blocked all the same.
    ['DELETE', 'https://api.github.com/x'],
    ['PUT', 'https://exfil.example/y'],
    ['GET', 'http://only-blocked.test/'],
    // Tunnels cut at their SNI, or whose every request was refused.
    ['CONNECT', 'fronted.test:443'],
    ['CONNECT', 'refused-inside.test:443'],
    ['PUT', 'https://refused-inside.test/'],
    // Ports the run never used.
    ['GET', 'http://api.github.com/'],
    ['GET', 'http://exfil.example/'],
    ['GET', 'https://dot.test/'],
    ['GET', 'http://127.0.0.1:28083/'],
    // Methods the run never used.
    ['POST', 'https://exfil.example/x'],
    ['DELETE', 'http://both.test/a'],
  ]) {
    assert.equal(verdict(policy, method ?? '', target ?? ''), 'block', `${method} ${target}`);
  }
});

test('audit rules: a relayed tunnel keeps its rule free of methods, which would have it intercepted', () => {
  const { policy } = suggestedPolicy(auditRun);
  const relayed = decide(policy, { method: 'CONNECT', target: 'mixed.test:443' });
  assert.equal(relayed.verdict, 'allow');
  assert.equal(relayed.rule?.methods, undefined);
});

test('audit rules: WebSockets are turned on only for a handshake that passed', () => {
  const socket = (verdict: string, layer: string) =>
    record({ verdict, method: 'WS', transport: 'websocket', target: 'ws://chat.test/', layer });
  assert.match(
    suggestedPolicy([socket('warn', 'destination')]).yaml,
    /\nwebsocket:\n {2}enabled: true\n/,
  );
  assert.match(suggestedPolicy([socket('allow', '')]).yaml, /\nwebsocket:\n {2}enabled: true\n/);
  // A message blocked on a WebSocket whose handshake is not in the chain: nothing passed.
  const blocked = suggestedPolicy([socket('block', 'dlp')]).yaml;
  assert.doesNotMatch(blocked, /websocket:/);
  assert.match(blocked, /\negress: \[\]\n/);
});

test('audit rules: a chain an engine continued after a crash (request ids start again) keeps each tunnel', () => {
  const { policy, yaml } = suggestedPolicy([
    // The first engine died with its relayed tunnel open: no outcome.
    ...tunnel('req-1', 'first.test:443', 'open'),
    // The next one reuses the request id for another tunnel, cut at its SNI.
    ...tunnel('req-1', 'second.test:443', 'cut'),
  ]);
  assert.equal(verdict(policy, 'CONNECT', 'first.test:443'), 'allow', yaml);
  assert.equal(verdict(policy, 'CONNECT', 'second.test:443'), 'block', yaml);
});

test('audit rules: past the limit, the rest are counted in a comment', () => {
  const many = Array.from({ length: 5 }, (_, i) => warned('GET', `http://h${i}.test/`));
  const tally = new PassedTrafficTally();
  for (const r of many) tally.add(r);
  const lines = suggestedRules(tally.passed(), 3);
  assert.equal(lines.filter((line) => line.startsWith('  - destination:')).length, 3);
  assert.ok(
    lines.includes('  # … and 2 more rules: their destinations are in `receipts.json`'),
    lines.join('\n'),
  );
});
