// Reads the server name (SNI) from the first bytes a client sends into a CONNECT tunnel,
// without terminating TLS, so a tunnel opened for one host cannot carry another. A hello
// that encrypts its real server name (ECH) is reported: its SNI is only a cover name.

export type ClientHelloResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'not_tls' }
  | { readonly kind: 'malformed'; readonly reason: string }
  | {
      readonly kind: 'hello';
      readonly serverName: string | undefined;
      /** Encrypted Client Hello (any draft, or ESNI): the name in the clear may be a cover. */
      readonly hidesServerName: boolean;
    };

const RECORD_HEADER = 5;
const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME_EXTENSION = 0x0000;
const HOST_NAME = 0x00;
/**
 * Codepoints of draft-ietf-tls-esni: encrypted_server_name 0xffce (-00 to -06), then
 * encrypted_client_hello 0xfe08 (-07, -08), 0xfe09 to 0xfe0c (-09 to -12), and 0xfe0d (-13
 * on, as in RFC 9849). A client built on any draft still hides the name it goes to.
 */
const ENCRYPTED_CLIENT_HELLO_FIRST = 0xfe08;
const ENCRYPTED_CLIENT_HELLO_LAST = 0xfe0d;
const ENCRYPTED_SERVER_NAME = 0xffce;
/** A ClientHello larger than this is refused rather than buffered. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

/** Parses as much as has arrived; `incomplete` asks for more bytes. */
export function parseClientHello(data: Uint8Array): ClientHelloResult {
  if (data.length === 0) return { kind: 'incomplete' };
  if (data[0] !== HANDSHAKE) return { kind: 'not_tls' };
  // The handshake message may span several records: join their payloads first.
  const payload: number[] = [];
  let offset = 0;
  let needed: number | undefined;
  while (needed === undefined || payload.length < needed) {
    if (offset + RECORD_HEADER > data.length) return more(data);
    if (data[offset] !== HANDSHAKE)
      return { kind: 'malformed', reason: 'the handshake is interleaved with other records' };
    if (data[offset + 1] !== 0x03) return { kind: 'not_tls' };
    const length = ((data[offset + 3] ?? 0) << 8) | (data[offset + 4] ?? 0);
    if (length === 0) return { kind: 'malformed', reason: 'empty TLS record' };
    if (offset + RECORD_HEADER + length > data.length) return more(data);
    for (let i = 0; i < length; i++) payload.push(data[offset + RECORD_HEADER + i] ?? 0);
    offset += RECORD_HEADER + length;
    if (needed === undefined && payload.length >= 4) {
      const size = declaredHelloSize(payload);
      if (typeof size === 'string') return { kind: 'malformed', reason: size };
      needed = size;
    }
  }
  return readServerName(Uint8Array.from(payload.slice(4, needed)));
}

/** One ClientHello handshake message (header and body), however its records split it. */
export function parseClientHelloMessage(message: Uint8Array): ClientHelloResult {
  if (message.length < 4) return { kind: 'incomplete' };
  const size = declaredHelloSize(message);
  if (typeof size === 'string') return { kind: 'malformed', reason: size };
  return message.length < size ? { kind: 'incomplete' } : readServerName(message.subarray(4, size));
}

/** The size, header included, of the ClientHello a handshake header declares; or why not. */
function declaredHelloSize(header: ArrayLike<number>): number | string {
  if (header[0] !== CLIENT_HELLO) return 'the first handshake message is not a ClientHello';
  const size = 4 + (((header[1] ?? 0) << 16) | ((header[2] ?? 0) << 8) | (header[3] ?? 0));
  return size > MAX_CLIENT_HELLO_BYTES ? 'the ClientHello is too large' : size;
}

function more(data: Uint8Array): ClientHelloResult {
  return data.length > MAX_CLIENT_HELLO_BYTES + 1024
    ? { kind: 'malformed', reason: 'the ClientHello is too large' }
    : { kind: 'incomplete' };
}

/**
 * Why the fields before a ClientHello's extensions are not what a TLS server accepts (RFC
 * 8446 §4.1.2, RFC 5246 §7.4.1.2), or undefined: a hello of zeros is no hello, and whatever
 * follows it would be relayed as if it were TLS.
 */
function helloFieldsProblem(reader: Reader): string | undefined {
  const version = reader.u16();
  reader.skip(32); // random
  const sessionId = reader.u8();
  reader.skip(sessionId);
  const cipherSuites = reader.u16();
  reader.skip(cipherSuites);
  const compressionMethods = reader.u8();
  reader.skip(compressionMethods);
  if (reader.failed) return 'truncated ClientHello';
  if (version < 0x0301 || version > 0x0303)
    return `ClientHello version ${version.toString(16).padStart(4, '0')} is not TLS 1.0 to 1.3`;
  if (sessionId > 32) return 'a session id longer than 32 bytes';
  if (cipherSuites === 0 || cipherSuites % 2 !== 0) return 'no cipher suite list';
  if (compressionMethods === 0) return 'no compression method';
  return undefined;
}

function readServerName(hello: Uint8Array): ClientHelloResult {
  const reader = new Reader(hello);
  const problem = helloFieldsProblem(reader);
  if (problem !== undefined) return { kind: 'malformed', reason: problem };
  if (reader.remaining === 0)
    return { kind: 'hello', serverName: undefined, hidesServerName: false };
  const extensionsLength = reader.u16();
  const extensionsEnd = reader.position + extensionsLength;
  let serverName: string | undefined;
  let seen = false;
  let hidesServerName = false;
  while (!reader.failed && reader.position < extensionsEnd) {
    const type = reader.u16();
    const length = reader.u16();
    const end = reader.position + length;
    if (type === SERVER_NAME_EXTENSION) {
      if (seen) return { kind: 'malformed', reason: 'two server_name extensions' };
      seen = true;
      const named = readHostName(reader, end);
      if (!named.ok) return { kind: 'malformed', reason: named.reason };
      serverName = named.name;
    }
    if (hidesName(type)) hidesServerName = true;
    reader.seek(end);
  }
  if (reader.failed || reader.position !== extensionsEnd)
    return { kind: 'malformed', reason: 'truncated ClientHello extensions' };
  if (reader.remaining !== 0)
    return { kind: 'malformed', reason: 'bytes after the ClientHello extensions' };
  return { kind: 'hello', serverName, hidesServerName };
}

function hidesName(extensionType: number): boolean {
  return (
    extensionType === ENCRYPTED_SERVER_NAME ||
    (extensionType >= ENCRYPTED_CLIENT_HELLO_FIRST && extensionType <= ENCRYPTED_CLIENT_HELLO_LAST)
  );
}

type HostName =
  { readonly ok: true; readonly name: string } | { readonly ok: false; readonly reason: string };

/**
 * RFC 6066 §3 allows one name per name_type, and host_name (0) is the only type defined.
 * Servers read other lists differently (OpenSSL refuses the extension, nginx's ssl_preread
 * takes a first entry of another type as no SNI): the name checked must be the only entry.
 */
function readHostName(reader: Reader, end: number): HostName {
  const listLength = reader.u16();
  if (reader.position + listLength !== end)
    return { ok: false, reason: 'inconsistent server_name lengths' };
  const nameType = reader.u8();
  const bytes = reader.bytes(reader.u16());
  if (reader.failed || reader.position > end)
    return { ok: false, reason: 'truncated server_name extension' };
  if (nameType !== HOST_NAME)
    return { ok: false, reason: `the server_name entry has type ${nameType}, not host_name (0)` };
  if (reader.position !== end)
    return { ok: false, reason: 'the server_name extension carries more than one name' };
  if (bytes.length === 0 || bytes.some((byte) => byte <= 0x20 || byte >= 0x7f))
    return { ok: false, reason: 'the SNI host name is not printable ASCII' };
  return { ok: true, name: String.fromCharCode(...bytes) };
}

class Reader {
  position = 0;
  failed = false;
  constructor(private readonly data: Uint8Array) {}
  get remaining(): number {
    return this.data.length - this.position;
  }
  private take(count: number): number {
    const start = this.position;
    if (count < 0 || start + count > this.data.length) {
      this.failed = true;
      this.position = this.data.length;
      return start;
    }
    this.position += count;
    return start;
  }
  u8(): number {
    const at = this.take(1);
    return this.failed ? 0 : (this.data[at] ?? 0);
  }
  u16(): number {
    const at = this.take(2);
    return this.failed ? 0 : ((this.data[at] ?? 0) << 8) | (this.data[at + 1] ?? 0);
  }
  bytes(count: number): Uint8Array {
    const at = this.take(count);
    return this.failed ? new Uint8Array() : this.data.subarray(at, at + count);
  }
  skip(count: number): void {
    this.take(count);
  }
  seek(position: number): void {
    this.take(position - this.position);
  }
}
