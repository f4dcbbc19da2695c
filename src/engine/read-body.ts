// Reads a request body whole, for a destination whose bodies are judged before they leave.

import type { IncomingMessage } from 'node:http';
import type { Refusal } from './refusal.js';

export type ReadBody = { ok: true; body: Buffer } | { ok: false; refusal: Refusal };

/** The engine's budget for bodies held for scanning is spent. */
export const HELD_BODIES_FULL: Refusal = {
  status: 503,
  layer: 'limit',
  reason: 'too many request bodies are being held for scanning at once; retry later',
};

/**
 * `reserve` is asked for every chunk's bytes before it is kept; a refusal stops the read
 * (the engine's budget for held bodies is spent).
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  tooLarge: Refusal,
  reserve: (bytes: number) => boolean,
): Promise<ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (result: ReadBody) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (!result.ok) req.pause();
      resolve(result);
    };
    const refuse = (status: number, layer: string, reason: string) =>
      finish({ ok: false, refusal: { status, layer, reason } });
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) return finish({ ok: false, refusal: tooLarge });
      if (!reserve(chunk.length)) return finish({ ok: false, refusal: HELD_BODIES_FULL });
      chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, body: Buffer.concat(chunks, length) });
    const onError = (error: Error) =>
      refuse(400, 'request', `the request body could not be read: ${error.message}`);
    const onClose = () => {
      if (!req.complete)
        refuse(400, 'request', 'the client went away before sending the whole body');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
