import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tunnelScheme, tunnelTarget, webSocketTarget } from '../../src/engine/request-targets.js';
import { parseIpv6Literal, parseNameOrIpv4, type Host } from '../../src/policy/host.js';
import { createSecretScanner } from '../../src/engine/dlp/secret-scan.js';

/** No secrets to cut: a reason quotes the request as sent. */
const asSent = (text: string): string => text;

function host(text: string): Host {
  const parsed = text.startsWith('[') ? parseIpv6Literal(text.slice(1, -1)) : parseNameOrIpv4(text);
  if (!parsed.ok) throw new Error(`bad test host ${text}`);
  return 'host' in parsed ? parsed.host : { kind: 'ip', ip: parsed.ip };
}

test('a WebSocket handshake target: /ws?url= raw or percent-encoded, or an absolute URL', () => {
  assert.deepEqual(webSocketTarget('/ws?url=wss://echo.test/chat?a=1&b=2'), {
    ok: true,
    target: 'wss://echo.test/chat?a=1&b=2',
  });
  assert.deepEqual(webSocketTarget('/ws?url=ws%3A%2F%2Fecho.test%2Fx%3Fa%3D1%26b%3D2'), {
    ok: true,
    target: 'ws://echo.test/x?a=1&b=2',
  });
  assert.deepEqual(webSocketTarget('http://echo.test/x'), { ok: true, target: 'ws://echo.test/x' });
  assert.deepEqual(webSocketTarget('HTTPS://echo.test/x'), {
    ok: true,
    target: 'wss://echo.test/x',
  });
  // A malformed escape is kept as given, and then fails as a target.
  const undecodable = webSocketTarget('/ws?url=ws%3A%E0%A4%A');
  assert.equal(undecodable.ok, false);
});

test('a WebSocket target with a space or a control character once decoded is refused, recorded as unparsed', () => {
  for (const given of [
    'ws%3A%2F%2Fecho.test%2Fa%09b',
    'ws%3A%2F%2Fecho.test%2Fa%0Db',
    'ws%3A%2F%2Fecho.test%2Fa%0Ab',
    'ws%3A%2F%2Fecho.test%2F%20',
    'ws%3A%2F%2Fecho.test%2Fa%7Fb',
  ]) {
    const located = webSocketTarget(`/ws?url=${given}`);
    assert.equal(located.ok, false, given);
    assert.equal(located.target, 'pipelock://request/unparsed');
    assert.match(!located.ok ? located.refusal.reason : '', /holds a space or a control character/);
  }
  // Escaped once more, a space stays an escape in the target.
  assert.deepEqual(webSocketTarget('/ws?url=ws%3A%2F%2Fecho.test%2Fa%2520b'), {
    ok: true,
    target: 'ws://echo.test/a%20b',
  });
});

test('a WebSocket target with a character outside printable ASCII once decoded is refused (a lookalike host, a raw U+00A0)', () => {
  for (const given of [
    'ws%3A%2F%2F%D0%B0pi.test%2F',
    'ws%3A%2F%2Fapi.test%2F%C2%A0',
    'ws%3A%2F%2Fapi.test%2F%E2%80%AE',
    'ws%3A%2F%2Fb%C3%BCcher.example%2F',
  ]) {
    const located = webSocketTarget(`/ws?url=${given}`);
    assert.equal(located.ok, false, given);
    assert.equal(located.target, 'pipelock://request/unparsed');
    assert.match(!located.ok ? located.refusal.reason : '', /outside printable ASCII; .* punycode/);
  }
  assert.deepEqual(webSocketTarget('/ws?url=ws%3A%2F%2Fxn--bcher-kva.example%2F%25C3%25BC'), {
    ok: true,
    target: 'ws://xn--bcher-kva.example/%C3%BC',
  });
});

test('a WebSocket handshake that names no ws(s) target is refused 400 with what to send', () => {
  const wrongScheme = webSocketTarget('/ws?url=http://echo.test/');
  assert.equal(wrongScheme.ok, false);
  assert.equal(wrongScheme.target, 'pipelock://request/unparsed');
  assert.deepEqual(!wrongScheme.ok && wrongScheme.refusal, {
    status: 400,
    layer: 'request',
    reason: 'the WebSocket proxy needs /ws?url=ws://… or /ws?url=wss://…',
  });
  const elsewhere = webSocketTarget('/chat');
  assert.equal(!elsewhere.ok && elsewhere.refusal.reason.includes('/ws?url=ws(s)://'), true);
  const ftp = webSocketTarget('ftp://echo.test/');
  assert.equal(ftp.ok, false);
  assert.equal(ftp.target, 'ftp://echo.test/');
});

test('inside a tunnel a path is placed on the CONNECT host; port 443 is left out', () => {
  const tunnel = { host: host('api.test'), port: 443 };
  assert.deepEqual(tunnelTarget('/v1/x?q=1', 'api.test', tunnel, 'https', asSent), {
    ok: true,
    target: 'https://api.test/v1/x?q=1',
  });
  assert.deepEqual(tunnelTarget('/v1/x', 'API.test:443', tunnel, 'https', asSent), {
    ok: true,
    target: 'https://api.test/v1/x',
  });
  const other = { host: host('[::1]'), port: 8443 };
  assert.deepEqual(tunnelTarget('/socket', '[0:0::1]:8443', other, 'wss', asSent), {
    ok: true,
    target: 'wss://[::1]:8443/socket',
  });
});

test('inside a plain HTTP tunnel the scheme is http (ws) and port 80 is left out, in the URL and the Host', () => {
  const tunnel = { host: host('api.test'), port: 80 };
  for (const header of ['api.test', 'api.test:80'])
    assert.deepEqual(tunnelTarget('/v1/x', header, tunnel, 'http', asSent), {
      ok: true,
      target: 'http://api.test/v1/x',
    });
  assert.deepEqual(tunnelTarget('/socket', 'api.test', tunnel, 'ws', asSent), {
    ok: true,
    target: 'ws://api.test/socket',
  });
  const located = tunnelTarget('/x', 'api.test:443', tunnel, 'http', asSent);
  assert.equal(!located.ok && located.refusal.layer, 'host');
  const other = { host: host('api.test'), port: 443 };
  assert.equal(tunnelTarget('/x', 'api.test', other, 'http', asSent).ok, false);
  assert.deepEqual(tunnelTarget('/x', 'api.test:443', other, 'http', asSent), {
    ok: true,
    target: 'http://api.test:443/x',
  });
});

test("a tunnel's requests take https (wss) when its TLS was intercepted, http (ws) in the clear", () => {
  assert.deepEqual(
    [
      tunnelScheme(true, false),
      tunnelScheme(true, true),
      tunnelScheme(false, false),
      tunnelScheme(false, true),
    ],
    ['https', 'wss', 'http', 'ws'],
  );
});

test('inside a tunnel a Host naming anything but the CONNECT target is refused 403 (host)', () => {
  const tunnel = { host: host('api.test'), port: 8443 };
  for (const header of [
    'evil.test:8443',
    'api.test',
    'api.test:443',
    'api.test.evil:8443',
    // userinfo a URL parser would drop; two Host headers, joined
    'evil@api.test:8443',
    'api.test:8443, other.test:8443',
  ]) {
    const located = tunnelTarget('/x', header, tunnel, 'https', asSent);
    assert.equal(located.ok, false, header);
    assert.equal(located.target, 'https://api.test:8443/x');
    assert.deepEqual(!located.ok && located.refusal, {
      status: 403,
      layer: 'host',
      reason: `Host ${header} does not match the CONNECT target api.test:8443`,
    });
  }
  const missing = tunnelTarget('/x', undefined, tunnel, 'https', asSent);
  assert.equal(
    !missing.ok && missing.refusal.reason,
    'the request has no Host header; expected api.test:8443',
  );
});

test('inside a tunnel an absolute-form request is refused 400, whatever host it names', () => {
  const tunnel = { host: host('api.test'), port: 443 };
  const located = tunnelTarget('https://evil.test/steal', 'api.test', tunnel, 'https', asSent);
  assert.equal(located.ok, false);
  assert.equal(located.target, 'https://api.test');
  assert.deepEqual(!located.ok && located.refusal, {
    status: 400,
    layer: 'request',
    reason: 'inside a tunnel a request names a path (origin-form), not "https://evil.test/steal"',
  });
});

test('a reason quoting the request has its secrets cut out before it is cut short: no piece of one is left', () => {
  const value = 'Zq7tKpW3xVm9LrB2nHs8';
  const scanner = createSecretScanner([], [{ env: 'AGENT_TOKEN', value, allow: [] }]);
  const redact = (text: string) => scanner.redactText(text);
  const tunnel = { host: host('api.test'), port: 443 };
  // The secret spans the 200th character of what is quoted.
  const header = `${'h'.repeat(181)}${value}`;
  const wrongHost = tunnelTarget('/x', header, tunnel, 'https', redact);
  const absolute = tunnelTarget(
    `https://e.test/${'p'.repeat(170)}${value}`,
    'api.test',
    tunnel,
    'https',
    redact,
  );
  for (const located of [wrongHost, absolute]) {
    const reason = !located.ok ? located.refusal.reason : '';
    assert.ok(reason.includes('[REDACTED:'), reason);
    assert.ok(!reason.includes(value.slice(0, 8)), reason);
  }
});
