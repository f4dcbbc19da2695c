import './dial-guard.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientHello, MAX_CLIENT_HELLO_BYTES } from '../../src/engine/client-hello.js';
import { captureHello, echExtensionBody, serverNameList, withExtension } from './tls-hello.js';

/** Splits the handshake payload of a one-record hello into records of at most `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const length = hello.readUInt16BE(3);
  const payload = hello.subarray(5, 5 + length);
  const records: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size) {
    const part = payload.subarray(at, at + size);
    const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
    header.writeUInt16BE(part.length, 3);
    records.push(header, part);
  }
  return Buffer.concat(records);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function sniExtension(names: readonly string[]): Buffer {
  return serverNameExtension(names.map((name) => [0, name]));
}

function serverNameExtension(entries: readonly (readonly [number, string])[]): Buffer {
  const list = serverNameList(entries);
  return Buffer.concat([u16(0x0000), u16(list.length), list]);
}

/** A minimal hand-made ClientHello record carrying the given extensions. */
function syntheticHello(extensions: Buffer | undefined): Buffer {
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(2),
    u16(0x1301),
    Buffer.from([1, 0]),
    ...(extensions ? [u16(extensions.length), extensions] : []),
  ]);
  const handshake = Buffer.concat([Buffer.from([0x01, 0, 0, 0]), body]);
  handshake.writeUIntBE(body.length, 1, 3);
  const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
  header.writeUInt16BE(handshake.length, 3);
  return Buffer.concat([header, handshake]);
}

test('a real node:tls ClientHello yields its servername', async () => {
  const hello = await captureHello({ servername: 'api.example.test' });
  assert.deepEqual(parseClientHello(hello), {
    kind: 'hello',
    serverName: 'api.example.test',
    hidesServerName: false,
  });
});

test('a real ClientHello to an IP address carries no SNI', async () => {
  const hello = await captureHello({});
  assert.deepEqual(parseClientHello(hello), {
    kind: 'hello',
    serverName: undefined,
    hidesServerName: false,
  });
});

test('a real ClientHello with a long ALPN list and many extensions is parsed', async () => {
  const alpn = Array.from({ length: 40 }, (_, i) => `protocol-number-${i}-${'x'.repeat(20)}`);
  const hello = await captureHello({
    servername: 'long.example.test',
    ALPNProtocols: alpn,
    ecdhCurve: 'X25519:P-256:P-384:P-521',
  });
  assert.ok(hello.length > 1200, `expected a large hello, got ${hello.length} bytes`);
  assert.deepEqual(parseClientHello(hello), {
    kind: 'hello',
    serverName: 'long.example.test',
    hidesServerName: false,
  });
});

test('a hello split across two TLS records is joined', async () => {
  const hello = await captureHello({ servername: 'split.example.test' });
  const half = Math.ceil((hello.readUInt16BE(3) + 1) / 2);
  const split = reframe(hello, half);
  assert.equal(split.length, hello.length + 5, 'two records');
  assert.deepEqual(parseClientHello(split), {
    kind: 'hello',
    serverName: 'split.example.test',
    hidesServerName: false,
  });
});

test('a split hello delivered byte by byte is incomplete until its last byte', async () => {
  const hello = reframe(await captureHello({ servername: 'bytes.example.test' }), 100);
  for (let n = 1; n < hello.length; n++) {
    const result = parseClientHello(hello.subarray(0, n));
    assert.equal(result.kind, 'incomplete', `prefix of ${n} bytes`);
  }
  assert.deepEqual(parseClientHello(hello), {
    kind: 'hello',
    serverName: 'bytes.example.test',
    hidesServerName: false,
  });
});

test('an empty buffer is incomplete', () => {
  assert.deepEqual(parseClientHello(new Uint8Array()), { kind: 'incomplete' });
});

test('plain HTTP in the tunnel is not TLS', () => {
  assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), {
    kind: 'not_tls',
  });
});

test('a handshake record with a non-TLS version byte is not TLS', () => {
  assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x02, 0x00, 0x00, 0x10])), {
    kind: 'not_tls',
  });
});

test('a handshake that is not a ClientHello is malformed', () => {
  const hello = syntheticHello(sniExtension(['a.test']));
  hello[5] = 0x02; // ServerHello
  assert.equal(parseClientHello(hello).kind, 'malformed');
});

test('an empty TLS record is malformed', () => {
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])).kind, 'malformed');
});

test('a synthetic hello without extensions has no SNI', () => {
  assert.deepEqual(parseClientHello(syntheticHello(undefined)), {
    kind: 'hello',
    serverName: undefined,
    hidesServerName: false,
  });
});

test('an extensions length longer than the hello is malformed, not an overread', () => {
  const hello = syntheticHello(sniExtension(['a.test']));
  const at = hello.length - sniExtension(['a.test']).length - 2;
  hello.writeUInt16BE(hello.readUInt16BE(at) + 40, at);
  assert.equal(parseClientHello(hello).kind, 'malformed');
});

test('a server_name extension whose inner lengths disagree is malformed', () => {
  const extension = sniExtension(['a.test']);
  extension.writeUInt16BE(extension.readUInt16BE(4) + 3, 4); // list length
  const result = parseClientHello(syntheticHello(extension));
  assert.equal(result.kind, 'malformed');
});

test('a host name length running past the extension is malformed', () => {
  const extension = sniExtension(['a.test']);
  extension.writeUInt16BE(200, 7); // name length
  assert.equal(parseClientHello(syntheticHello(extension)).kind, 'malformed');
});

test('a truncated session id / cipher list is malformed', () => {
  const hello = syntheticHello(undefined);
  hello[5 + 4 + 34] = 0xff; // session id length beyond the body
  assert.equal(parseClientHello(hello).kind, 'malformed');
});

test('a hello whose fields no TLS server accepts is malformed: the bytes after it would be relayed as TLS', () => {
  // The body's fields: version at 9, session id length at 43, cipher suites at 44 (2 + 2
  // bytes), compression methods at 48 (1 + 1 byte).
  const edited = (edit: (hello: Buffer) => void) => {
    const hello = syntheticHello(sniExtension(['a.test']));
    edit(hello);
    return parseClientHello(hello);
  };
  const reason = (result: ReturnType<typeof parseClientHello>) =>
    result.kind === 'malformed' ? result.reason : result.kind;
  assert.equal(edited(() => undefined).kind, 'hello');
  assert.equal(
    reason(edited((h) => h.writeUInt16BE(0x0000, 9))),
    'ClientHello version 0000 is not TLS 1.0 to 1.3',
  );
  assert.equal(
    reason(edited((h) => h.writeUInt16BE(0x0300, 9))),
    'ClientHello version 0300 is not TLS 1.0 to 1.3',
  );
  assert.equal(edited((h) => h.writeUInt16BE(0x0301, 9)).kind, 'hello');
  // A body of zeros: what a prober sent ahead of 60 KB of other bytes.
  const zeros = Buffer.concat([
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0x2e, 0x01, 0x00, 0x00, 0x2a]),
    Buffer.alloc(42),
  ]);
  assert.equal(parseClientHello(zeros).kind, 'malformed');
  const noSuites = Buffer.concat([
    syntheticHello(undefined).subarray(0, 44),
    Buffer.from([0, 0, 1, 0]),
  ]);
  noSuites.writeUInt16BE(noSuites.length - 5, 3);
  noSuites.writeUIntBE(noSuites.length - 9, 6, 3);
  assert.equal(reason(parseClientHello(noSuites)), 'no cipher suite list');
  assert.equal(reason(edited((h) => (h[48] = 0))), 'no compression method');
  // Bytes after the extensions, inside the hello's declared length.
  const trailing = Buffer.concat([syntheticHello(sniExtension(['a.test'])), Buffer.from('junk')]);
  trailing.writeUInt16BE(trailing.length - 5, 3);
  trailing.writeUIntBE(trailing.length - 9, 6, 3);
  assert.equal(reason(parseClientHello(trailing)), 'bytes after the ClientHello extensions');
});

test('two host names in server_name are refused', () => {
  const result = parseClientHello(syntheticHello(sniExtension(['a.test', 'b.test'])));
  assert.deepEqual(result, {
    kind: 'malformed',
    reason: 'the server_name extension carries more than one name',
  });
});

test('a server_name list must be exactly one host_name: an entry of another type is refused wherever it is', () => {
  const typeOne = {
    kind: 'malformed',
    reason: 'the server_name entry has type 1, not host_name (0)',
  };
  const cases: [readonly (readonly [number, string])[], unknown][] = [
    // OpenSSL refuses this list, and nginx's ssl_preread reads it as no SNI at all.
    [
      [
        [1, 'evil.test'],
        [0, 'good.test'],
      ],
      typeOne,
    ],
    [
      [
        [0, 'good.test'],
        [1, 'evil.test'],
      ],
      { kind: 'malformed', reason: 'the server_name extension carries more than one name' },
    ],
    [[[1, 'good.test']], typeOne],
  ];
  for (const [entries, expected] of cases) {
    const result = parseClientHello(syntheticHello(serverNameExtension(entries)));
    assert.deepEqual(result, expected, JSON.stringify(entries));
  }
});

test('two server_name extensions are refused', () => {
  const both = Buffer.concat([sniExtension(['a.test']), sniExtension(['b.test'])]);
  const result = parseClientHello(syntheticHello(both));
  assert.deepEqual(result, { kind: 'malformed', reason: 'two server_name extensions' });
});

test('a host name with control or non-ASCII bytes is refused', () => {
  assert.equal(parseClientHello(syntheticHello(sniExtension(['a\u0000.test']))).kind, 'malformed');
  assert.equal(parseClientHello(syntheticHello(sniExtension(['a b.test']))).kind, 'malformed');
});

test('a declared hello larger than the cap is refused without buffering it', () => {
  const hello = syntheticHello(undefined);
  hello.writeUIntBE(MAX_CLIENT_HELLO_BYTES + 1, 6, 3);
  assert.equal(parseClientHello(hello).kind, 'malformed');
});

test('a handshake interleaved with another record type is malformed', async () => {
  const hello = reframe(await captureHello({ servername: 'x.example.test' }), 100);
  const second = 5 + 100;
  hello[second] = 0x17; // application data between handshake fragments
  assert.equal(parseClientHello(hello).kind, 'malformed');
});

test('a hello with Encrypted Client Hello (any draft codepoint, or ESNI) keeps its cover name and says it hides one', async () => {
  const hello = await captureHello({ servername: 'cover.example.test' });
  // RFC 9849 and draft-ietf-tls-esni-13 on; drafts -12, -11, -10, -09, -08 (and -07); ESNI.
  for (const type of [0xfe0d, 0xfe0c, 0xfe0b, 0xfe0a, 0xfe09, 0xfe08, 0xffce]) {
    assert.deepEqual(
      parseClientHello(withExtension(hello, type, echExtensionBody())),
      { kind: 'hello', serverName: 'cover.example.test', hidesServerName: true },
      `extension 0x${type.toString(16)}`,
    );
  }
  // The unknown extensions either side of the ECH codepoints hide nothing.
  for (const type of [0xfe07, 0xfe0e]) {
    assert.deepEqual(parseClientHello(withExtension(hello, type, echExtensionBody())), {
      kind: 'hello',
      serverName: 'cover.example.test',
      hidesServerName: false,
    });
  }
});
