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
      socket.off('close', onClose);
      if (!result.ok) socket.destroy();
      resolve(result);
    };
    const onSecure = () => finish({ ok: true, socket });
    const onError = (error: Error) => finish({ ok: false, reason: handshakeFailure(error) });
    const onClose = () =>
      finish({ ok: false, reason: 'the client closed the connection during the TLS handshake' });
    const timer = setTimeout(
      () => finish({ ok: false, reason: `TLS handshake not completed within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('secure', onSecure);
    socket.on('error', onError);
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
