// `pipelock-egress view DIR`: verifies an Audit Packet and serves it to a browser on loopback
// until SIGINT or SIGTERM.
import { loadPacketView } from '../packet/view/load-packet.js';
import { serveViewer, type RunningViewer } from '../packet/view/viewer-server.js';
import { type CliIo, UsageError } from './io.js';
import { openPacket } from './open-packet.js';
import { listenText, loopbackListen } from './loopback-listen.js';
import { optionValue, parseOptions } from './options.js';
import { jsonLine } from './json-line.js';
import { showInvisible } from '../invisible.js';

const COMMAND = 'view';
const PREFIX = `pipelock-egress ${COMMAND}`;

export async function viewCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [dir, ...rest] = args;
  if (dir === undefined || dir.startsWith('--'))
    throw new UsageError(`${COMMAND}: give the Audit Packet directory first: view DIR [options]`);
  const options = parseOptions(COMMAND, rest, {
    single: ['listen', 'policy-hash'],
    repeatable: ['public-key'],
  });
  const listen = loopbackListen(
    COMMAND,
    'the viewer',
    optionValue(options, 'listen') ?? '127.0.0.1:0',
  );
  const opened = await openPacket(
    PREFIX,
    {
      dir,
      keyArgs: options.values.get('public-key') ?? [],
      policyHashFile: optionValue(options, 'policy-hash'),
    },
    io,
    loadPacketView,
  );
  if (!opened.ok) {
    io.err(`${PREFIX}: ${showInvisible(opened.error)}\n`);
    return 2;
  }
  const view = opened.packet;
  let viewer: RunningViewer;
  try {
    viewer = await serveViewer(view, listen);
  } catch (error) {
    io.err(`${PREFIX}: cannot listen on ${listenText(listen)}: ${(error as Error).message}\n`);
    return 1;
  }
  // Installed before the ready line: whoever started the viewer may signal as soon as it reads it.
  const stopSignal = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  io.out(
    jsonLine({
      event: 'listening',
      url: viewer.url,
      verdict: view.verdict.verdict,
      receipts: view.rows.length,
    }),
  );
  io.err(
    `${PREFIX}: ${showInvisible(dir)}: verdict ${view.verdict.verdict}; open ${viewer.url} (the address is the key: share it with no one); Ctrl-C stops\n`,
  );
  await stopSignal;
  await viewer.close();
  return 0;
}
