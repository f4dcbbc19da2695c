// Real ClientHellos for tests: captured from node:tls on a loopback socket, and edited the way
// a client that node:tls cannot imitate would send them (an extra extension, such as ECH).
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type ConnectionOptions,
  type TlsOptions,
} from 'node:tls';
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
  await listen(server);
  const client = tlsConnect({
    host: '127.0.0.1',
    port: portOf(server),
    rejectUnauthorized: false,
    ...options,
  });
  client.on('error', () => undefined);
  try {
    return await captured;
  } finally {
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await close(server);
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

/**
 * Every byte a node:tls client sends in a whole session with a node:tls server, through a
 * loopback relay: its handshake, `payload` as application data, and its close.
 */
export async function captureClientStream(
  client: ConnectionOptions,
  server: TlsOptions,
  payload: Buffer,
): Promise<Buffer> {
  const origin = createTlsServer(server, (socket) => {
    socket.resume();
    socket.on('end', () => socket.end());
  });
  const sent: Buffer[] = [];
  let relayed: Promise<unknown> = Promise.resolve();
  const relay = createServer({ allowHalfOpen: true }, (socket) => {
    const upstream = connect({ port: portOf(origin), host: '127.0.0.1', allowHalfOpen: true });
    socket.on('data', (chunk: Buffer) => sent.push(chunk));
    socket.pipe(upstream).pipe(socket);
    relayed = once(upstream, 'close');
  });
  await Promise.all([listen(origin), listen(relay)]);
  try {
    const tls = tlsConnect({ host: '127.0.0.1', port: portOf(relay), ...client });
    await once(tls, 'secureConnect');
    tls.end(payload);
    await once(tls, 'close');
    await relayed;
    return Buffer.concat(sent);
  } finally {
    await Promise.all([close(origin), close(relay)]);
  }
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}
