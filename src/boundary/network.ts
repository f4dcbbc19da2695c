// The agent's network namespace: only `lo`, a firewall that lets nothing leave but `lo`, and a
// resolver that points at the namespace's own loopback so every lookup fails at once.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { mustRun, runTool } from './command.js';

export interface NetworkTools {
  readonly ip: string;
  readonly iptables: string;
  readonly ip6tables: string;
  readonly iptablesRestore: string;
  readonly ip6tablesRestore: string;
}

/** `iptables -S OUTPUT` inside the namespace, exactly, for both families. */
export const OUTPUT_CHAIN_RULES = ['-P OUTPUT DROP', '-A OUTPUT -o lo -j ACCEPT'];

export const netnsConfigDir = (netns: string): string => `/etc/netns/${netns}`;

export async function createNetwork(netns: string, tools: NetworkTools): Promise<void> {
  const inNs = (argv: readonly string[]): readonly string[] => [
    tools.ip,
    'netns',
    'exec',
    netns,
    ...argv,
  ];
  // Written before the namespace exists: `ip netns exec` binds it over /etc/resolv.conf.
  await mkdir(netnsConfigDir(netns), { recursive: true, mode: 0o755 });
  await writeFile(
    `${netnsConfigDir(netns)}/resolv.conf`,
    '# pipelock-egress: no resolver inside the boundary; names resolve at the proxy\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n',
    { mode: 0o644 },
  );
  await mustRun('creating the network namespace', [tools.ip, 'netns', 'add', netns]);
  // One process for the rest: lo up, then both firewalls, each replaced whole by *-restore.
  const rules = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A OUTPUT -o lo -j ACCEPT\nCOMMIT\n`;
  await mustRun(
    'setting up the namespace (lo, firewall)',
    inNs([
      '/bin/sh',
      '-c',
      '"$1" link set lo up && printf %s "$4" | "$2" -w && printf %s "$4" | "$3" -w',
      'pipelock-egress-network',
      tools.ip,
      tools.iptablesRestore,
      tools.ip6tablesRestore,
      rules,
    ]),
  );
}

/** Problems with the namespace's interfaces and firewall, read as root from inside it. */
export async function networkProblems(netns: string, tools: NetworkTools): Promise<string[]> {
  const problems: string[] = [];
  for (const [family, table] of [
    ['IPv4', tools.iptables],
    ['IPv6', tools.ip6tables],
  ] as const) {
    const rules = await runTool([tools.ip, 'netns', 'exec', netns, table, '-w', '-S', 'OUTPUT']);
    const lines = rules.stdout.trim().split('\n');
    if (rules.code !== 0 || lines.join('\n') !== OUTPUT_CHAIN_RULES.join('\n')) {
      problems.push(
        `${family} OUTPUT chain is not "${OUTPUT_CHAIN_RULES.join('; ')}" but "${lines.join('; ')}"`,
      );
    }
  }
  return problems;
}

export async function removeNetwork(netns: string, ip: string): Promise<void> {
  const listed = await mustRun('listing network namespaces', [ip, 'netns', 'list']);
  if (listed.split('\n').some((line) => line.split(' ')[0] === netns)) {
    await mustRun('deleting the network namespace', [ip, 'netns', 'delete', netns]);
  }
  await rm(netnsConfigDir(netns), { recursive: true, force: true });
}
