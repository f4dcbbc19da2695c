// Which host unix sockets the agent is kept from: the /proc/net/unix listing and the
// permission rule are pure; the lookup runs against real socket files made here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  boundSocketPaths,
  connectableHostSockets,
  mayConnect,
  unixSocketListings,
} from '../../src/boundary/host-sockets.js';
import { scratchDir } from '../scratch.js';

const HEADER = 'Num       RefCount Protocol Flags    Type St Inode Path';

function entry(path: string | undefined, inode = 1000): string {
  return `0000000000000000: 00000002 00000000 00010000 0001 01 ${String(inode).padStart(5)}${path === undefined ? '' : ` ${path}`}`;
}

test('the listing gives the absolute paths bound, once each; abstract, relative and unbound are left out', () => {
  const listing = [
    HEADER,
    entry('/run/snapd.socket', 17),
    entry('/run/snapd.socket', 1234567),
    entry('@/org/freedesktop/systemd1/notify'),
    entry(undefined),
    entry('relative.sock'),
    entry('/tmp/dir with space/relay.sock'),
    '0000000000000000: 00000003 00000000 00000000 0002 01 20011 /run/systemd/journal/dev-log',
    'garbage line /etc/passwd',
    '',
  ].join('\n');
  const paths = boundSocketPaths(listing);
  // Each path alone, and joined with the lines after it (a path may hold a newline).
  assert.deepEqual(
    paths.filter((path) => !path.includes('\n')),
    ['/run/snapd.socket', '/tmp/dir with space/relay.sock', '/run/systemd/journal/dev-log'],
  );
  assert.ok(paths.includes(`/run/snapd.socket\n${entry('/run/snapd.socket', 1234567)}`));
  assert.ok(paths.every((path) => path.startsWith('/') && path.length <= 108));
});

test('a path holding newlines is read over the lines it spans, even ones that look like entries', () => {
  const forged = entry('/run/decoy.sock');
  const listing = [HEADER, entry('/srv/a'), 'b.sock', entry('/srv/c'), forged, '/d.sock', ''].join(
    '\n',
  );
  const paths = boundSocketPaths(listing);
  for (const path of ['/srv/a', '/srv/a\nb.sock', `/srv/c\n${forged}\n/d.sock`, '/run/decoy.sock'])
    assert.ok(paths.includes(path), JSON.stringify(path));
  // Nothing longer than a socket path can be.
  assert.ok(paths.every((path) => path.length <= 108));
  assert.ok(!paths.some((path) => path.startsWith(`/srv/a\nb.sock\n${entry('/srv/c')}\n`)));
});

test('the agent may connect to a socket any group or other may write, or one it owns', () => {
  const agent = 4242;
  const cases: [mode: number, uid: number, connectable: boolean][] = [
    [0o140666, 0, true],
    [0o140777, 0, true],
    [0o140660, 0, true],
    [0o140620, 0, true],
    [0o140602, 0, true],
    [0o140600, 0, false],
    [0o140644, 0, false],
    [0o140755, 0, false],
    [0o140600, agent, true],
    // Its owner may chmod it.
    [0o140400, agent, true],
    [0o140000, agent, true],
  ];
  for (const [mode, uid, connectable] of cases)
    assert.equal(mayConnect({ mode, uid }, agent), connectable, `${mode.toString(8)} uid ${uid}`);
});

test('real socket files: the connectable ones are found; private ones, plain files and missing paths are not', async () => {
  const dir = scratchDir('pe-sockets-');
  const servers: Server[] = [];
  const listen = async (name: string, mode: number, uid = 0): Promise<string> => {
    const path = join(dir, name);
    const server = createServer();
    await new Promise<void>((done) => server.listen(path, done));
    servers.push(server);
    chownSync(path, uid, 0);
    chmodSync(path, mode);
    return path;
  };
  try {
    const open = await listen('open.sock', 0o666);
    const group = await listen('group.sock', 0o660);
    const closed = await listen('closed.sock', 0o600);
    const agents = await listen('agents.sock', 0o600, 4242);
    const file = join(dir, 'plain-file');
    writeFileSync(file, '');
    chmodSync(file, 0o666);
    const listing = [HEADER, open, group, closed, agents, file, join(dir, 'gone.sock')]
      .map((path) => (path === HEADER ? path : entry(path)))
      .join('\n');
    assert.deepEqual(await connectableHostSockets(listing, 4242), [open, group, agents]);
    assert.deepEqual(await connectableHostSockets(listing, 4343), [open, group]);
  } finally {
    for (const server of servers) server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real socket whose path holds a newline is found in the real listing', async () => {
  const dir = scratchDir('pe-sockets-');
  const server = createServer();
  try {
    const path = join(dir, 'nl\nsock');
    await new Promise<void>((done) => server.listen(path, done));
    chmodSync(path, 0o666);
    assert.ok((await connectableHostSockets(await unixSocketListings(), 4242)).includes(path));
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connectable socket whose path is not UTF-8 stops the run instead of staying open', async () => {
  const dir = scratchDir('pe-sockets-');
  try {
    // Node names files by text; python binds the raw bytes.
    execFileSync('python3', [
      '-c',
      'import os, socket, sys; p = os.fsencode(sys.argv[1]) + b"/\\xff.sock"; s = socket.socket(socket.AF_UNIX); s.bind(p); os.chmod(p, 0o666)',
      dir,
    ]);
    const latin1 = `${dir}/\u00ff.sock`;
    await assert.rejects(
      connectableHostSockets([HEADER, entry(latin1)].join('\n'), 4242),
      /the unix socket ".*\/ÿ\.sock" is reachable by the agent and its path is not UTF-8, so it cannot be masked; remove it or make it unwritable by others/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
