// The audit loop with the real engine: a run in audit mode, the rules its summary proposes,
// then the same traffic in enforce mode under them. What passed passes again, as it was sent
// (a relayed tunnel still relayed); what audit mode blocked, and what the run never did, not.
import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassedTrafficTally, suggestedRules } from '../../src/packet/audit-rules.js';
import {
  cleanup,
  curl,
  curlTrustingRunCa,
  echo,
  makePki,
  parseCurlResponse,
  sealedRecords,
  startEngine,
  startHttpsOrigin,
  startOrigin,
  type Origin,
  type RunningEngine,
} from './helpers.js';

const pki = makePki(['relayed.test', 'seen.test']);
after(() => cleanup(pki.dir));

const NAMES = ['plain.test', 'seen.test', 'relayed.test'];

/** What the agent does: each request, and the status it got. */
async function agent(proxy: RunningEngine, http: Origin, https: Origin): Promise<string[]> {
  const status = async (result: Promise<{ stdout: Buffer }>) =>
    parseCurlResponse((await result).stdout).status;
  const asked = async (name: string, result: Promise<{ stdout: Buffer }>) =>
    `${name} ${await status(result)}`;
  const via = ['-i', '--proxy', proxy.proxyUrl];
  return [
    await asked('GET plain', curl([...via, `http://plain.test:${http.port}/a`])),
    await asked('POST plain', curl([...via, '-d', 'x', `http://plain.test:${http.port}/b`])),
    // A secret: blocked in audit mode too, and its method is no method the run needed.
    await asked(
      'DELETE plain with a token',
      curl([...via, '-X', 'DELETE', `http://plain.test:${http.port}/c?t=ghp_${'a'.repeat(36)}`]),
    ),
    // Intercepted in audit mode (no rule allows it): its requests are judged one by one.
    await asked(
      'GET seen',
      curlTrustingRunCa(proxy, ['-i', `https://seen.test:${https.port}/small`]),
    ),
    // Allowed by a rule without methods: relayed, the origin's own certificate seen.
    await asked(
      'POST relayed',
      curl([...via, '--cacert', pki.caFile, '-d', 'y', `https://relayed.test:${https.port}/small`]),
    ),
  ];
}

test('audit loop: the rules an audit run proposes let the same traffic through in enforce mode, and no more', async () => {
  const http = await startOrigin(echo);
  const https = await startHttpsOrigin((_req, res) => res.end('ok'), pki);
  // The names resolve to loopback, which passes only where a rule names the address: the
  // user's policy keeps that rule when it takes the suggested ones in.
  const addressRule = `  - destination: "127.0.0.1/32"\n    ports: [${http.port}, ${https.port}]\n`;
  const pins = Object.fromEntries(NAMES.map((name) => [name, '127.0.0.1']));
  const start = (policy: string) => startEngine({ policy, pins, upstreamCa: [pki.caCert] });
  const audit = await start(
    `version: "1.0"\nmode: audit\negress:\n${addressRule}  - destination: "relayed.test:${https.port}"\n`,
  );
  let enforce: RunningEngine | undefined;
  try {
    const audited = await agent(audit, http, https);
    assert.deepEqual(audited, [
      'GET plain 200',
      'POST plain 200',
      'DELETE plain with a token 403',
      'GET seen 200',
      'POST relayed 200',
    ]);
    const tally = new PassedTrafficTally();
    for (const record of await sealedRecords(audit)) tally.add(record);
    const rules = suggestedRules(tally.passed(), 200);
    assert.deepEqual(rules.slice(3), [
      `  - destination: "plain.test:${http.port}"`,
      '    methods: ["GET", "POST"]',
      `  - destination: "relayed.test:${https.port}"`,
      `  - destination: "seen.test:${https.port}"`,
      '    methods: ["GET"]',
      'default_deny: true',
    ]);
    const [version, mode, egress, ...rest] = rules;
    enforce = await start([version, mode, egress, addressRule.trimEnd(), ...rest, ''].join('\n'));
    assert.deepEqual(await agent(enforce, http, https), audited);
    // What the run never did does not pass.
    const put = await curlTrustingRunCa(enforce, [
      ...['-i', '-X', 'PUT'],
      `https://seen.test:${https.port}/small`,
    ]);
    assert.equal(parseCurlResponse(put.stdout).status, 403);
    const del = await curl([
      ...['-i', '--proxy', enforce.proxyUrl, '-X', 'DELETE'],
      `http://plain.test:${http.port}/c`,
    ]);
    assert.equal(parseCurlResponse(del.stdout).status, 403);
    // The relayed tunnel is relayed again: nothing inside it was judged.
    const records = await sealedRecords(enforce);
    assert.ok(records.some((r) => r.method === 'CONNECT' && r.target.startsWith('relayed.test')));
    assert.ok(!records.some((r) => r.transport === 'intercept' && r.target.includes('relayed')));
  } finally {
    await audit.stop();
    await enforce?.stop();
    await http.close();
    await https.close();
  }
});
