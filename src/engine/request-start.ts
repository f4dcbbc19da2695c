// Whether the first bytes a client sends into a CONNECT tunnel begin an HTTP/1.x request:
// Node's own fetch (NODE_USE_ENV_PROXY) and curl --proxytunnel send an http:// URL's requests
// in the clear inside a tunnel. Decided from those bytes alone: a method node:http parses,
// then a space. What follows is node:http's to parse, as inside an intercepted tunnel.

import { METHODS } from 'node:http';

export type RequestStart = 'request' | 'incomplete' | 'other';

const STARTS = METHODS.map((method) => Buffer.from(`${method} `, 'latin1'));

/** `incomplete` asks for more bytes: what has arrived begins some method and its space. */
export function requestStart(data: Uint8Array): RequestStart {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (STARTS.some((start) => bytes.subarray(0, start.length).equals(start))) return 'request';
  const begun = STARTS.some(
    (start) => bytes.length < start.length && start.subarray(0, bytes.length).equals(bytes),
  );
  return begun ? 'incomplete' : 'other';
}
