// The two unprivileged accounts of the boundary: created when absent, reused when present,
// refused when a privileged group would hand the agent (or the engine) a way back to root.
import { BoundaryError, mustRun, runTool } from './command.js';

export const AGENT_USER = 'pipelock-agent';
export const HOST_USER = 'pipelock-host';

/** Membership in any of these is a path to root (sudo rules, docker/lxd sockets, raw disks, logs). */
export const PRIVILEGED_GROUPS = [
  'root',
  'sudo',
  'wheel',
  'admin',
  'docker',
  'lxd',
  'kvm',
  'disk',
  'adm',
];

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly created: boolean;
}

const SHELLS: Record<string, string> = {
  [AGENT_USER]: '/bin/bash',
  [HOST_USER]: '/usr/sbin/nologin',
};

/** Why an existing account cannot be used, or undefined when it can. */
export function accountProblem(
  name: string,
  uid: number,
  groups: readonly string[],
): string | undefined {
  if (uid === 0) return `user ${name} has uid 0`;
  const privileged = groups.filter((group) => PRIVILEGED_GROUPS.includes(group));
  if (privileged.length === 0) return undefined;
  return `user ${name} belongs to the privileged group${privileged.length === 1 ? '' : 's'} ${privileged.join(', ')}; remove it (gpasswd -d ${name} ${privileged[0] ?? ''}) or delete the user so the boundary can create it afresh`;
}

interface Identity {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly string[];
}

/** `id NAME` in one call: "uid=998(a) gid=998(a) groups=998(a),27(sudo)". */
export function parseId(output: string): Identity | undefined {
  const match = /^uid=([0-9]+)\([^)]*\) gid=([0-9]+)\([^)]*\)(?: groups=(.*))?$/.exec(
    output.trim(),
  );
  if (!match) return undefined;
  const groups = (match[3] ?? '')
    .split(',')
    .map((group) => /\(([^)]*)\)/.exec(group)?.[1] ?? group);
  return { uid: Number(match[1]), gid: Number(match[2]), groups: groups.filter((g) => g !== '') };
}

async function lookup(name: string): Promise<Identity | undefined> {
  const result = await runTool(['id', name]);
  if (result.code !== 0) return undefined;
  const identity = parseId(result.stdout);
  if (identity === undefined)
    throw new BoundaryError(
      `looking up ${name}: cannot read "id ${name}": ${result.stdout.trim()}`,
    );
  return identity;
}

/**
 * `claim` runs before the account is made: a run killed right after useradd has then already
 * recorded it as its own to remove.
 */
export async function ensureAccount(
  name: string,
  claim: () => Promise<void> = async () => undefined,
): Promise<Account> {
  let identity = await lookup(name);
  let created = false;
  if (identity === undefined) {
    await claim();
    const result = await runTool([
      'useradd',
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      SHELLS[name] ?? '/usr/sbin/nologin',
      name,
    ]);
    identity = await lookup(name);
    if (identity === undefined) {
      throw new BoundaryError(`creating user ${name}: useradd failed: ${result.stderr.trim()}`);
    }
    // Another run may have created it between our lookup and useradd: then it is not ours.
    created = result.code === 0;
  }
  const problem = accountProblem(name, identity.uid, identity.groups);
  if (problem !== undefined) {
    if (created) await removeAccount(name);
    throw new BoundaryError(problem);
  }
  return { name, uid: identity.uid, gid: identity.gid, created };
}

export async function removeAccount(name: string): Promise<void> {
  if ((await lookup(name)) === undefined) return;
  await mustRun(`removing user ${name}`, ['userdel', name]);
}
