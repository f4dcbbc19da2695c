// The agent's network namespace: only `lo`, a firewall that lets nothing leave but `lo`, and a
// resolver that points at the namespace's own loopback so every lookup fails at once.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { mustRun, runTool } from './command.js';

export interface NetworkTools {
  readonly ip: string;
  readonly iptables: string;
  readonly ip6tables: string;
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
  await mustRun('bringing up lo in the namespace', inNs([tools.ip, 'link', 'set', 'lo', 'up']));
  for (const table of [tools.iptables, tools.ip6tables]) {
    await mustRun('installing the namespace firewall', inNs([table, '-w', '-P', 'OUTPUT', 'DROP']));
    await mustRun('installing the namespace firewall', inNs([table, '-w', '-F', 'OUTPUT']));
    await mustRun(
      'installing the namespace firewall',
      inNs([table, '-w', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT']),
    );
  }
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

export async function removeNetwork(netns: string, tools: NetworkTools): Promise<void> {
  const listed = await mustRun('listing network namespaces', [tools.ip, 'netns', 'list']);
  if (listed.split('\n').some((line) => line.split(' ')[0] === netns)) {
    await mustRun('deleting the network namespace', [tools.ip, 'netns', 'delete', netns]);
  }
  await rm(netnsConfigDir(netns), { recursive: true, force: true });
}
