// The engine's listening socket is opened inside the agent's namespace (on its 127.0.0.1) by a
// short-lived helper, then passed over Node's IPC channel (SCM_RIGHTS) to whoever serves it.
// It travels as the bare TCP handle, not as a net.Server: a Server would start accepting in
// every process it passes through, stranding connections there. A bare handle accepts
// nothing until the engine listens on it; connections made before that wait in the backlog.
import { spawn } from 'node:child_process';
import { BoundaryError } from './command.js';

const HELPER = `
const server = require('node:net').createServer();
server.on('error', (error) => { console.error(error.message); process.exit(1); });
server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
  process.send({ port: server.address().port }, server._handle, () => process.exit(0));
});`;

/** A listening TCP handle (libuv's), as Node's IPC delivers it. */
export interface ListeningHandle {
  close(): void;
}

export interface NamespaceListener {
  readonly handle: ListeningHandle;
  readonly port: number;
}

export function openListenerInNamespace(ip: string, netns: string): Promise<NamespaceListener> {
  return new Promise((resolve, reject) => {
    const helper = spawn(ip, ['netns', 'exec', netns, process.execPath, '-e', HELPER], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: {},
    });
    let stderr = '';
    let received: NamespaceListener | undefined;
    helper.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    helper.on('message', (message: { port?: unknown }, handle: unknown) => {
      if (typeof message.port === 'number' && handle !== undefined) {
        received = { handle: handle as ListeningHandle, port: message.port };
      }
    });
    helper.on('error', (error) =>
      reject(
        new BoundaryError(`opening the proxy listener in ${netns}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    helper.on('close', (code) => {
      if (received !== undefined && code === 0) resolve(received);
      else {
        received?.handle.close();
        reject(
          new BoundaryError(
            `opening the proxy listener in ${netns}: helper exited ${code}: ${stderr.trim()}`,
          ),
        );
      }
    });
  });
}
