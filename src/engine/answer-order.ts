// HTTP/1.1 answers go out in the order their requests came (RFC 9112 9.3.2). node:http queues
// the answers of pipelined requests itself; what the engine writes to a connection on its own
// (the refusal of a request node could not parse, an upgrade's 101, a tunnel's 200) waits for
// the answers before it.

import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** The answer node:http is writing on the connection now, if it is not finished. */
export function answerInProgress(socket: Duplex): ServerResponse | undefined {
  const answering = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  return answering && !answering.writableFinished ? answering : undefined;
}

/**
 * Settles once every answer node:http is writing or has queued on the connection is out (up to
 * `own`, the answer of the request waiting, when it has one queued), or the connection has
 * closed. node hands the connection to the next queued answer as the one before finishes,
 * before any listener the engine adds.
 */
export async function answersWritten(socket: Duplex, own?: ServerResponse): Promise<void> {
  for (
    let answering = answerInProgress(socket);
    answering && answering !== own;
    answering = answerInProgress(socket)
  ) {
    const out = answering;
    const closed = await new Promise<boolean>((resolve) => {
      const finished = () => {
        socket.off('close', gone);
        resolve(false);
      };
      const gone = () => {
        out.off('finish', finished);
        resolve(true);
      };
      out.once('finish', finished);
      socket.once('close', gone);
    });
    if (closed) return;
  }
}
