// Reads a request body whole, for a destination whose bodies are scanned before they leave.

import type { IncomingMessage } from 'node:http';

export type ReadBody = { ok: true; body: Buffer } | { ok: false; reason: string };

export function readBody(req: IncomingMessage, maxBytes: number): Promise<ReadBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (result: ReadBody) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) {
        req.pause();
        finish({
          ok: false,
          reason: `the request body exceeds the scan limit of ${maxBytes} bytes; a scanned destination cannot receive what cannot be scanned`,
        });
      } else chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, body: Buffer.concat(chunks, length) });
    const onError = (error: Error) =>
      finish({ ok: false, reason: `the request body could not be read: ${error.message}` });
    const onClose = () => {
      if (!req.complete)
        finish({ ok: false, reason: 'the client went away before sending the whole body' });
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
