// Preflight: everything the boundary needs is checked before anything is changed on the
// machine, and each miss is one error that says how to fix it.

import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { BoundaryTools } from './boundary.js';
import { SYSCALLS } from './seccomp.js';

/** The tools the boundary drives, with the Debian/Ubuntu package that provides each. */
export const REQUIRED_TOOLS: ReadonlyArray<{ readonly tool: string; readonly pkg: string }> = [
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'iptables', pkg: 'iptables' },
  { tool: 'ip6tables', pkg: 'iptables' },
  { tool: 'iptables-restore', pkg: 'iptables' },
  { tool: 'ip6tables-restore', pkg: 'iptables' },
  { tool: 'setpriv', pkg: 'util-linux' },
  { tool: 'unshare', pkg: 'util-linux' },
  { tool: 'useradd', pkg: 'passwd' },
  { tool: 'prlimit', pkg: 'util-linux' },
  { tool: 'setsid', pkg: 'util-linux' },
  { tool: 'flock', pkg: 'util-linux' },
  { tool: 'mount', pkg: 'mount' },
  { tool: 'bash', pkg: 'bash' },
  { tool: 'perl', pkg: 'perl-base' },
];

/** Needed only to grant the agent write access (`--writable`). */
export const ACL_TOOLS: ReadonlyArray<{ readonly tool: string; readonly pkg: string }> = [
  { tool: 'setfacl', pkg: 'acl' },
  { tool: 'getfacl', pkg: 'acl' },
];

/** The namespaces the agent gets of its own. */
export const REQUIRED_NAMESPACES = ['net', 'mnt', 'pid', 'ipc'] as const;

export interface HostFacts {
  readonly platform: NodeJS.Platform;
  /** The CPU architecture: the seccomp filter needs its system call numbers. */
  readonly arch: string;
  readonly uid: number;
  /** Each required tool's path on PATH, or undefined. */
  readonly tools: Readonly<Record<string, string | undefined>>;
  /** Namespace kinds the kernel offers (from /proc/self/ns). */
  readonly namespaces: readonly string[];
}

/** Every reason the boundary cannot be set up here; empty when it can. */
export function preflightProblems(facts: HostFacts, needs: { readonly acl: boolean }): string[] {
  if (facts.platform !== 'linux') {
    return [
      `the boundary needs Linux (network, mount and PID namespaces, iptables); this is ${facts.platform}`,
    ];
  }
  const problems: string[] = [];
  if (SYSCALLS[facts.arch] === undefined) {
    problems.push(
      `the boundary supports x64 and arm64 machines (its seccomp filter needs their system call numbers); this is ${facts.arch}`,
    );
  }
  if (facts.uid !== 0) {
    problems.push(
      'the boundary needs root to create namespaces, users and firewall rules; run it with sudo',
    );
  }
  for (const { tool, pkg } of needs.acl ? [...REQUIRED_TOOLS, ...ACL_TOOLS] : REQUIRED_TOOLS) {
    if (facts.tools[tool] === undefined) {
      problems.push(
        `${tool} is not on PATH; install the ${pkg} package (apt-get install -y ${pkg})`,
      );
    }
  }
  for (const kind of REQUIRED_NAMESPACES) {
    if (!facts.namespaces.includes(kind)) {
      problems.push(
        `the kernel offers no ${kind} namespace (/proc/self/ns/${kind} is missing); the boundary cannot isolate the agent here`,
      );
    }
  }
  return problems;
}

export async function gatherHostFacts(path = process.env['PATH'] ?? ''): Promise<HostFacts> {
  const directories = path.split(delimiter).filter((directory) => directory !== '');
  const tools: Record<string, string | undefined> = {};
  for (const { tool } of [...REQUIRED_TOOLS, ...ACL_TOOLS]) {
    tools[tool] = await findExecutable(tool, directories);
  }
  const namespaces: string[] = [];
  for (const kind of REQUIRED_NAMESPACES) {
    if (
      await access(`/proc/self/ns/${kind}`).then(
        () => true,
        () => false,
      )
    )
      namespaces.push(kind);
  }
  return {
    platform: process.platform,
    arch: process.arch,
    uid: process.getuid?.() ?? -1,
    tools,
    namespaces,
  };
}

async function findExecutable(
  tool: string,
  directories: readonly string[],
): Promise<string | undefined> {
  for (const directory of directories) {
    const candidate = join(directory, tool);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

/** The tools' paths, once preflightProblems found none missing. */
export function boundaryTools(facts: HostFacts): BoundaryTools {
  const path = (tool: string): string => {
    const found = facts.tools[tool];
    if (found === undefined) throw new Error(`preflight missed ${tool}`);
    return found;
  };
  return {
    ip: path('ip'),
    iptables: path('iptables'),
    ip6tables: path('ip6tables'),
    iptablesRestore: path('iptables-restore'),
    ip6tablesRestore: path('ip6tables-restore'),
    unshare: path('unshare'),
    mount: path('mount'),
    prlimit: path('prlimit'),
    setpriv: path('setpriv'),
    setsid: path('setsid'),
    flock: path('flock'),
    bash: path('bash'),
    perl: path('perl'),
  };
}
