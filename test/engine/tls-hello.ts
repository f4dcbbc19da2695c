// Real ClientHellos for tests: captured from node:tls on a loopback socket, and edited the way
// a client that node:tls cannot imitate would send them (an extra extension, such as ECH).
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { parseClientHello } from '../../src/engine/client-hello.js';

/** The first flight a real node:tls client sends (its ClientHello). */
export async function captureHello(options: ConnectionOptions): Promise<Buffer> {
  let resolveHello: (hello: Buffer) => void = () => undefined;
  const captured = new Promise<Buffer>((resolve) => (resolveHello = resolve));
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (parseClientHello(buffered).kind !== 'incomplete') resolveHello(buffered);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = tlsConnect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    rejectUnauthorized: false,
    ...options,
  });
  client.on('error', () => undefined);
  try {
    return await captured;
  } finally {
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A one-record ClientHello with one more extension at the end of its list. */
export function withExtension(hello: Buffer, type: number, body: Buffer): Buffer {
  let at = 5 + 4 + 2 + 32; // record and handshake headers, legacy_version, random
  at += 1 + (hello[at] ?? 0); // legacy_session_id
  at += 2 + hello.readUInt16BE(at); // cipher_suites
  at += 1 + (hello[at] ?? 0); // legacy_compression_methods
  const extension = Buffer.alloc(4 + body.length);
  extension.writeUInt16BE(type, 0);
  extension.writeUInt16BE(body.length, 2);
  body.copy(extension, 4);
  const edited = Buffer.concat([hello, extension]);
  edited.writeUInt16BE(hello.readUInt16BE(at) + extension.length, at);
  edited.writeUIntBE(hello.readUIntBE(6, 3) + extension.length, 6, 3);
  edited.writeUInt16BE(hello.readUInt16BE(3) + extension.length, 3);
  return edited;
}

/** A server_name extension body (RFC 6066 §3): its list of (name_type, name) entries. */
export function serverNameList(
  entries: readonly (readonly [type: number, name: string])[],
): Buffer {
  const encoded = entries.map(([type, name]) => {
    const entry = Buffer.alloc(3 + Buffer.byteLength(name));
    entry.writeUInt8(type, 0);
    entry.writeUInt16BE(entry.length - 3, 1);
    entry.write(name, 3);
    return entry;
  });
  const list = Buffer.concat(encoded);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(list.length);
  return Buffer.concat([length, list]);
}

/**
 * An outer Encrypted Client Hello extension (draft-ietf-tls-esni: type outer, HPKE suite,
 * config id, enc, payload) with made-up contents, as a client sending GREASE ECH does.
 */
export function echExtensionBody(): Buffer {
  const enc = Buffer.alloc(32, 0x11);
  const payload = Buffer.alloc(144, 0x22);
  return Buffer.concat([
    Buffer.from([0x00, 0x00, 0x01, 0x00, 0x01, 0x7a]), // outer, HKDF-SHA256, AES-128-GCM, config id
    Buffer.from([0x00, enc.length]),
    enc,
    Buffer.from([payload.length >> 8, payload.length & 0xff]),
    payload,
  ]);
}
