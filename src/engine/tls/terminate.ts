// Terminates the client's TLS inside an admitted CONNECT tunnel with a run-CA certificate for
// the CONNECT host. The ClientHello already read for the SNI check is handed back first.

import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

export type Termination = { ok: true; socket: TLSSocket } | { ok: false; reason: string };

/** Alerts a client sends when it does not accept the certificate it was shown. */
const REJECTED_CERTIFICATE =
  /alert (?:bad certificate|unknown ca|certificate unknown|unsupported certificate|certificate revoked|certificate expired|decrypt error|access denied)/i;

export function terminateTls(
  client: Socket,
  hello: Buffer,
  context: SecureContext,
  timeoutMs: number,
): Promise<Termination> {
  return new Promise((resolve) => {
    client.unshift(hello);
    const socket = new TLSSocket(client, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ['http/1.1'],
    });
    const finish = (result: Termination) => {
      clearTimeout(timer);
      socket.off('secure', onSecure);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const onSecure = () => finish({ ok: true, socket });
    const onError = (error: Error) => finish({ ok: false, reason: handshakeFailure(error) });
    const onEnd = () =>
      finish({
        ok: false,
        reason:
          'the client closed the connection during the TLS handshake: it likely does not trust the run CA, or pins certificates',
      });
    const onClose = () =>
      finish({ ok: false, reason: 'the client closed the connection during the TLS handshake' });
    const timer = setTimeout(
      () => finish({ ok: false, reason: `TLS handshake not completed within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('secure', onSecure);
    socket.on('error', onError);
    // The socket takes allowHalfOpen from the HTTP server's socket it wraps: a client's FIN
    // without an alert (Node's tls sends none when it rejects the certificate) ends it, and
    // nothing closes it. The wrapped socket emits nothing: its handle now belongs to this one.
    socket.once('end', onEnd);
    socket.once('close', onClose);
  });
}

function handshakeFailure(error: Error): string {
  if (REJECTED_CERTIFICATE.test(error.message))
    return `the client rejected the interception certificate (${alertText(error)}): it does not trust the run CA or pins its own`;
  if (/no application protocol/i.test(error.message))
    return 'the client offered no HTTP/1.1 (only HTTP/2, as gRPC does, or another protocol), and interception speaks HTTP/1.1 only';
  return `TLS handshake with the client failed: ${alertText(error)}`;
}

function alertText(error: Error): string {
  const reason = (error as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : error.message;
}
