import './dial-guard.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseClientHelloMessage } from '../../src/engine/client-hello.js';
import { MAX_RECORD_BYTES, TlsRecordGuard } from '../../src/engine/tls-records.js';
import { cleanup, makePki } from './helpers.js';
import { captureClientStream, captureHello, echExtensionBody, withExtension } from './tls-hello.js';

const pki = makePki(['good.example.test']);
after(() => cleanup(pki.dir));

/** Judges a ClientHello as a tunnel to good.example.test does (SNI and ECH only, for brevity). */
function judge(message: Buffer): string | undefined {
  const parsed = parseClientHelloMessage(message);
  if (parsed.kind !== 'hello') return `${parsed.kind}`;
  if (parsed.hidesServerName) return 'ech';
  return parsed.serverName === 'good.example.test' ? undefined : `sni ${parsed.serverName}`;
}

function record(type: number, content: Buffer, version = 0x0303): Buffer {
  const header = Buffer.from([type, 0, 0, 0, 0]);
  header.writeUInt16BE(version, 1);
  header.writeUInt16BE(content.length, 3);
  return Buffer.concat([header, content]);
}

/** Splits the handshake payload of a one-record hello into records of at most `size` bytes. */
function reframe(hello: Buffer, size: number): Buffer {
  const payload = hello.subarray(5);
  const records: Buffer[] = [];
  for (let at = 0; at < payload.length; at += size)
    records.push(record(0x16, payload.subarray(at, at + size), 0x0301));
  return Buffer.concat(records);
}

/** Feeds the stream in chunks of `size` bytes; the first problem, or undefined. */
function inspect(stream: Buffer, size = stream.length): string | undefined {
  const guard = new TlsRecordGuard(judge);
  for (let at = 0; at < stream.length; at += size) {
    const problem = guard.inspect(stream.subarray(at, at + size));
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** How many handshake records of the stream begin a ClientHello. */
function clientHellos(stream: Buffer): number {
  let count = 0;
  for (let at = 0; at < stream.length; at += 5 + stream.readUInt16BE(at + 3)) {
    if (stream[at] === 0x16 && stream[at + 5] === 0x01) count++;
  }
  return count;
}

const CHANGE_CIPHER_SPEC = record(0x14, Buffer.from([1]));
const goodHello = () => captureHello({ servername: 'good.example.test' });

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`a whole real ${version} session, however it is chunked, passes`, async () => {
    const stream = await captureClientStream(
      { servername: 'good.example.test', ca: pki.caCert, maxVersion: version },
      { key: pki.serverKey, cert: pki.serverCert },
      randomBytes(200_000),
    );
    for (const size of [stream.length, 16_384, 1_000, 7, 1]) {
      assert.equal(inspect(stream, size), undefined, `chunks of ${size}`);
    }
  });
}

test('a real TLS 1.3 session with a HelloRetryRequest passes: the second ClientHello names the same host', async () => {
  const stream = await captureClientStream(
    { servername: 'good.example.test', ca: pki.caCert },
    // The client's one key share is X25519: a server taking only P-384 asks for another.
    { key: pki.serverKey, cert: pki.serverCert, ecdhCurve: 'P-384' },
    Buffer.from('hello'),
  );
  assert.equal(clientHellos(stream), 2);
  assert.equal(inspect(stream), undefined);
  assert.equal(inspect(stream, 3), undefined);
});

test('plaintext after the ClientHello is refused, whatever the chunking', async () => {
  const stream = Buffer.concat([await goodHello(), Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
  const expected =
    'the client sent something other than a TLS record (content type 71); only TLS may be tunnelled';
  assert.equal(inspect(stream), expected);
  assert.equal(inspect(stream, 1), expected);
});

test('a record header with another version, or longer than TLS allows, is refused', async () => {
  const hello = await goodHello();
  assert.match(
    inspect(Buffer.concat([hello, record(0x17, Buffer.alloc(10), 0x0203)])) ?? '',
    /\(version 203\)/,
  );
  const long = Buffer.from([0x17, 0x03, 0x03, 0, 0]);
  long.writeUInt16BE(MAX_RECORD_BYTES + 1, 3);
  assert.match(inspect(Buffer.concat([hello, long])) ?? '', /\(a record of 18433 bytes\)/);
  // The longest a record may be passes.
  const longest = record(0x17, Buffer.alloc(MAX_RECORD_BYTES));
  assert.equal(inspect(Buffer.concat([hello, longest])), undefined);
});

test('a second ClientHello naming another host is refused, in one record or split over several', async () => {
  const evil = await captureHello({ servername: 'evil.example.test' });
  for (const second of [evil, reframe(evil, 100), reframe(evil, 1)]) {
    const stream = Buffer.concat([await goodHello(), CHANGE_CIPHER_SPEC, second]);
    assert.equal(inspect(stream), 'sni evil.example.test');
    assert.equal(inspect(stream, 5), 'sni evil.example.test');
  }
});

test('a second ClientHello with Encrypted Client Hello is refused', async () => {
  const second = withExtension(await goodHello(), 0xfe0d, echExtensionBody());
  assert.equal(inspect(Buffer.concat([await goodHello(), second])), 'ech');
});

test('a second ClientHello declared larger than can be checked is refused once a second record continues it', async () => {
  const start = Buffer.from([0x01, 0x01, 0x00, 0x00, ...Buffer.alloc(100)]); // 64 KiB body
  const alone = Buffer.concat([await goodHello(), record(0x16, start)]);
  assert.equal(inspect(alone), undefined, 'not yet: it may be an encrypted record');
  const continued = Buffer.concat([alone, record(0x16, Buffer.alloc(100))]);
  assert.equal(inspect(continued), 'malformed');
});

/** A handshake message: its type, 24-bit length and body. */
function message(type: number, body: Buffer): Buffer {
  const header = Buffer.from([type, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}

test('a handshake message spanning records is followed through: bytes inside it that look like a ClientHello are not one', async () => {
  // A TLS 1.2 client's large Certificate message, its second record starting 01 02 00 00 …
  const body = Buffer.alloc(20_000, 0x42);
  body.set([0x01, 0x02, 0x00, 0x00], 16_000 - 4);
  const certificate = message(0x0b, body);
  const stream = Buffer.concat([
    await goodHello(),
    record(0x16, certificate.subarray(0, 16_000)),
    record(0x16, certificate.subarray(16_000)),
    record(0x16, message(0x10, Buffer.alloc(33, 0x42))), // ClientKeyExchange
    CHANGE_CIPHER_SPEC,
  ]);
  assert.equal(inspect(stream), undefined);
  assert.equal(inspect(stream, 999), undefined);
});

test('a ClientHello is found wherever it begins, after another message in the same record too', async () => {
  const evil = (await captureHello({ servername: 'evil.example.test' })).subarray(5);
  const coalesced = record(0x16, Buffer.concat([message(0x10, Buffer.alloc(33)), evil]));
  assert.equal(inspect(Buffer.concat([await goodHello(), coalesced])), 'sni evil.example.test');
});

test('a handshake record that only begins like a ClientHello, followed by another record type, passes', async () => {
  // A TLS 1.2 client's encrypted Finished can begin with 0x01 by chance.
  const lookalike = record(0x16, Buffer.from([0x01, 0x00, 0x01, 0x00, 0x9a, ...randomBytes(35)]));
  const stream = Buffer.concat([
    await goodHello(),
    CHANGE_CIPHER_SPEC,
    lookalike,
    record(0x17, randomBytes(100)),
    record(0x16, Buffer.alloc(300, 0x42)),
  ]);
  assert.equal(inspect(stream), undefined);
});

test('a second ClientHello split by a ChangeCipherSpec (which OpenSSL reads on across) is refused, wherever it is split', async () => {
  const evil = (await captureHello({ servername: 'evil.example.test' })).subarray(5);
  const expected =
    'a ClientHello split by a record of another type (TLS forbids it; some servers read it whole); only whole ClientHellos may pass';
  for (const at of [1, 4, 5, 6, 100, evil.length - 1]) {
    const stream = Buffer.concat([
      await goodHello(),
      CHANGE_CIPHER_SPEC,
      record(0x16, evil.subarray(0, at)),
      CHANGE_CIPHER_SPEC,
      record(0x16, evil.subarray(at)),
    ]);
    assert.equal(inspect(stream), expected, `split after ${at} bytes`);
    assert.equal(inspect(stream, 3), expected, `split after ${at} bytes, read 3 bytes at a time`);
  }
  // Whatever its legacy_version (OpenSSL takes any from 3.0 up when supported_versions is there),
  // and across an alert record too.
  for (const version of [0x0301, 0x0300, 0x0304, 0x0400]) {
    const versioned = Buffer.from(evil);
    versioned.writeUInt16BE(version, 4);
    for (const between of [CHANGE_CIPHER_SPEC, record(0x15, Buffer.from([1, 0]))]) {
      const stream = Buffer.concat([
        await goodHello(),
        CHANGE_CIPHER_SPEC,
        record(0x16, versioned.subarray(0, 6)),
        between,
        record(0x16, versioned.subarray(6)),
      ]);
      assert.equal(inspect(stream), expected, `legacy_version ${version.toString(16)}`);
    }
  }
  // One declared larger than can be checked, too.
  const oversized = Buffer.from([0x01, 0x01, 0x00, 0x00, 0x03, 0x03, ...randomBytes(100)]);
  const stream = Buffer.concat([await goodHello(), record(0x16, oversized), CHANGE_CIPHER_SPEC]);
  assert.equal(inspect(stream), expected);
});
