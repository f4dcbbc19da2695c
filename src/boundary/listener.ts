// The engine's listening socket is opened inside the agent's namespace (on its 127.0.0.1) by a
// short-lived helper, then passed over Node's IPC channel (SCM_RIGHTS) to whoever serves it.
import { spawn } from 'node:child_process';
import type { Server } from 'node:net';
import { BoundaryError } from './command.js';

const HELPER = `
const server = require('node:net').createServer();
server.on('error', (error) => { console.error(error.message); process.exit(1); });
server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
  process.send({ port: server.address().port }, server, () => process.exit(0));
});`;

export interface NamespaceListener {
  readonly server: Server;
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
        received = { server: handle as Server, port: message.port };
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
        received?.server.close();
        reject(
          new BoundaryError(
            `opening the proxy listener in ${netns}: helper exited ${code}: ${stderr.trim()}`,
          ),
        );
      }
    });
  });
}
