// TLS interception from inside the boundary: the agent's system trust store holds the run CA,
// so ordinary clients (curl, Python's urllib) work unchanged while every request inside the
// tunnel is judged; the run CA's key is nowhere the agent (or anyone) can read.
import { after, before, beforeEach, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanup, echo, makePki, startHttpsOrigin, type Origin } from '../engine/helpers.js';
import {
  assertNothingLeft,
  evidenceOf,
  requireBuiltCli,
  runAgent,
  snapshot,
  type MachineSnapshot,
} from './harness.js';

const pki = makePki(['api.example.test']);
let origin: Origin;
let machine: MachineSnapshot;

before(async () => {
  requireBuiltCli();
  origin = await startHttpsOrigin(echo, pki);
});
after(async () => {
  await origin.close();
  cleanup(pki.dir);
});
beforeEach(() => (machine = snapshot()));
afterEach(() => assertNothingLeft(machine));

const policyFor = (port: number): string => `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${port}]
    methods: ["GET"]
  # The test origin listens on loopback: naming it lets the SSRF guard pass the pinned name.
  - destination: "127.0.0.1"
    ports: [${port}]
default_deny: true
`;

const PYTHON = `
import json, os, urllib.request, urllib.error
url = os.environ["TARGET"]
for method, data in (("GET", None), ("POST", b"x=1")):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=10) as r:
            print("python", method, r.status, json.loads(r.read())["url"])
    except urllib.error.HTTPError as e:
        print("python", method, e.code, e.read().decode().strip())
`;

test('HTTPS inside the boundary is intercepted: curl and Python trust the run CA unchanged, each request is judged', async () => {
  const url = `https://api.example.test:${origin.port}/repos/x`;
  const run = await runAgent({
    policy: policyFor(origin.port),
    options: ['--resolve', 'api.example.test:127.0.0.1', '--upstream-ca', pki.caFile],
    files: { 'client.py': PYTHON },
    script: `set -u
curl -sS --max-time 10 -w ' %{http_code}\\n' ${url}
curl -sS --max-time 10 -w ' %{http_code}\\n' -X POST -d x ${url}
TARGET=${url} python3 client.py
`,
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /"url":"\/repos\/x".* 200$/m);
  assert.match(run.stdout, /^blocked: method POST is not allowed by egress\[0\].*\n 403$/m);
  assert.match(run.stdout, /^python GET 200 \/repos\/x$/m);
  assert.match(run.stdout, /^python POST 403 blocked: method POST is not allowed/m);
  const inner = evidenceOf(run).decisions.filter((r) => r.action_record.transport === 'intercept');
  assert.deepEqual(
    inner.map((r) => `${r.action_record.verdict} ${r.action_record.method}`),
    ['allow GET', 'block POST', 'allow GET', 'block POST'],
  );
  // The packet holds the run CA's certificate, never a private key.
  const evidenceDir = join(run.out, 'evidence');
  const names = readdirSync(evidenceDir);
  assert.ok(names.includes('run-ca.pem'), names.join(', '));
  for (const name of names)
    assert.doesNotMatch(readFileSync(join(evidenceDir, name), 'latin1'), /PRIVATE KEY/, name);
});
