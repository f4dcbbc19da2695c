// Keeps reading what a client sends through a passthrough tunnel, from its ClientHello on:
// every byte must belong to a TLS record, and a later ClientHello (a TLS 1.3 client sends its
// second one in the clear, after a HelloRetryRequest) is judged like the first. Only record
// headers are read, and handshake records: bulk data costs a few checks a record.

import { Transform, type TransformCallback } from 'node:stream';
import { MAX_CLIENT_HELLO_BYTES } from './client-hello.js';

const RECORD_HEADER = 5;
const MESSAGE_HEADER = 4;
const CHANGE_CIPHER_SPEC = 20;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const CLIENT_HELLO = 1;
/** RFC 5246 §6.2.3: a record's fragment is at most 2^14 + 2048 bytes (TLS 1.3 allows less). */
export const MAX_RECORD_BYTES = 2 ** 14 + 2048;

/** Why a ClientHello handshake message (header and body) may not pass, or undefined. */
export type HelloJudge = (message: Buffer) => string | undefined;

/** Units that are a fixed-size header giving the length of what follows (records, messages). */
interface Framing {
  /** Header bytes still to come, 0 once the current unit's header is whole. */
  headerMissing(): number;
  /** Bytes of the current unit still to come after its header. */
  bodyMissing(): number;
  addHeader(part: Buffer): string | undefined;
  addBody(part: Buffer): string | undefined;
}

/** Hands each part of `data` to the unit it belongs to; stops at the first problem. */
function readFramed(data: Buffer, framing: Framing): string | undefined {
  for (let at = 0; at < data.length;) {
    const headerMissing = framing.headerMissing();
    const part = data.subarray(
      at,
      at + (headerMissing > 0 ? headerMissing : framing.bodyMissing()),
    );
    at += part.length;
    const problem = headerMissing > 0 ? framing.addHeader(part) : framing.addBody(part);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

export class TlsRecordGuard implements Framing {
  /** The current record's header, as much of it as has arrived. */
  private header = Buffer.alloc(0);
  /** Content bytes of the current record still to come, once its header is whole. */
  private remaining = 0;
  private readonly handshake: HandshakeMessages;

  constructor(judge: HelloJudge) {
    this.handshake = new HandshakeMessages(judge);
  }

  /** Reads the client's next bytes; returns why the tunnel must close if they break the rules. */
  inspect(chunk: Buffer): string | undefined {
    return readFramed(chunk, this);
  }

  headerMissing(): number {
    return RECORD_HEADER - this.header.length;
  }

  bodyMissing(): number {
    return this.remaining;
  }

  addHeader(part: Buffer): string | undefined {
    this.header = Buffer.concat([this.header, part]);
    if (this.header.length < RECORD_HEADER) return undefined;
    const problem = this.headerProblem();
    if (problem !== undefined)
      return `the client sent something other than a TLS record (${problem}); only TLS may be tunnelled`;
    this.remaining = this.header.readUInt16BE(3);
    const type = this.header[0] ?? 0;
    if (this.remaining === 0) this.header = Buffer.alloc(0);
    return type === HANDSHAKE ? this.handshake.record() : this.handshake.interrupted(type);
  }

  private headerProblem(): string | undefined {
    const type = this.header[0] ?? 0;
    const length = this.header.readUInt16BE(3);
    if (type < CHANGE_CIPHER_SPEC || type > APPLICATION_DATA) return `content type ${type}`;
    if (this.header[1] !== 0x03) return `version ${this.header.readUInt16BE(1).toString(16)}`;
    if (length > MAX_RECORD_BYTES) return `a record of ${length} bytes`;
    return undefined;
  }

  addBody(part: Buffer): string | undefined {
    this.remaining -= part.length;
    const handshake = this.header[0] === HANDSHAKE;
    if (this.remaining === 0) this.header = Buffer.alloc(0);
    return handshake ? this.handshake.add(part) : undefined;
  }
}

/**
 * Follows the handshake messages in the client's handshake records as a server reads them, so
 * that a ClientHello is recognised where it begins, and never in another message's bytes.
 */
class HandshakeMessages implements Framing {
  /** The current message's header, as much of it as has arrived. */
  private header: number[] = [];
  /** Body bytes of the current message still to come, once its header is whole. */
  private remaining = 0;
  /** The current message so far, when it is a ClientHello small enough to gather. */
  private hello: Buffer[] | undefined;
  /** The current message is a ClientHello declared larger than can be checked. */
  private oversized = false;
  /** The first two body bytes of the current message, as far as they have arrived. */
  private bodyStart: number[] = [];

  constructor(private readonly judge: HelloJudge) {}

  /**
   * A handshake record begins. A ClientHello too large to check may not go on in it: alone,
   * its first record may be a TLS 1.2 client's encrypted one that only begins like it.
   */
  record(): string | undefined {
    return this.oversized ? this.judge(Buffer.from(this.header)) : undefined;
  }

  /**
   * A record of another type begins. TLS lets no handshake message span one, so one still open
   * was the ciphertext of a TLS 1.2 client's encrypted handshake record, read as if it were
   * plain, and is forgotten; unless it may be a ClientHello: some servers (OpenSSL) read a
   * ClientHello on across a ChangeCipherSpec (or an alert), so one split so would pass
   * unjudged. Across those, a message of the ClientHello type is taken for one whatever its
   * version bytes say (OpenSSL takes any legacy_version from 3.0 up); across application data,
   * which a TLS 1.2 client's encrypted Finished comes before, only one that begins as hellos
   * do.
   */
  interrupted(recordType: number): string | undefined {
    const maybeHello =
      this.header[0] === CLIENT_HELLO &&
      (recordType !== APPLICATION_DATA || this.beginsLikeHelloBody());
    this.reset();
    return maybeHello
      ? 'a ClientHello split by a record of another type (TLS forbids it; some servers read it whole); only whole ClientHellos may pass'
      : undefined;
  }

  /**
   * Whether the body so far can begin a ClientHello (legacy_version 3.3): ciphertext that
   * begins with the ClientHello type byte almost never goes on so.
   */
  private beginsLikeHelloBody(): boolean {
    return this.bodyStart.every((byte) => byte === 0x03);
  }

  private reset(): void {
    this.header = [];
    this.remaining = 0;
    this.hello = undefined;
    this.oversized = false;
    this.bodyStart = [];
  }

  /** The next bytes of handshake record content. */
  add(content: Buffer): string | undefined {
    return readFramed(content, this);
  }

  headerMissing(): number {
    return MESSAGE_HEADER - this.header.length;
  }

  bodyMissing(): number {
    return this.remaining;
  }

  addHeader(part: Buffer): string | undefined {
    this.header.push(...part);
    if (this.header.length < MESSAGE_HEADER) return undefined;
    const [type, high = 0, middle = 0, low = 0] = this.header;
    this.remaining = (high << 16) | (middle << 8) | low;
    if (type === CLIENT_HELLO) {
      this.oversized = MESSAGE_HEADER + this.remaining > MAX_CLIENT_HELLO_BYTES;
      this.hello = this.oversized ? undefined : [Buffer.from(this.header)];
    }
    return this.remaining === 0 ? this.endMessage() : undefined;
  }

  addBody(part: Buffer): string | undefined {
    this.hello?.push(part);
    if (this.bodyStart.length < 2)
      this.bodyStart.push(...part.subarray(0, 2 - this.bodyStart.length));
    this.remaining -= part.length;
    return this.remaining === 0 ? this.endMessage() : undefined;
  }

  private endMessage(): string | undefined {
    const hello = this.hello;
    this.reset();
    return hello === undefined ? undefined : this.judge(Buffer.concat(hello));
  }
}

/** Passes the client's bytes on while the guard finds nothing wrong; then fails with its reason. */
export function guardedStream(guard: TlsRecordGuard): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const problem = guard.inspect(chunk);
      if (problem === undefined) callback(null, chunk);
      else callback(new Error(problem));
    },
  });
}
