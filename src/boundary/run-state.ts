// What one run has changed on the machine, saved after every change so that teardown (in the
// run itself, or in the action's post step after the run was killed) can undo exactly that.
import { writeFile } from 'node:fs/promises';
import type { AccessGrant } from './access.js';

export interface RunState {
  readonly runId: string;
  readonly root: string;
  /** The `ip` tool: teardown lists and removes the namespace with it. */
  readonly ip: string;
  netnsCreated: boolean;
  sudoersFile: string | null;
  createdUsers: string[];
  /** Paths granted to the agent with ACLs: revoked, and the agent's files given back to the owner. */
  aclGrants: AccessGrant[];
  enginePid: number | null;
}

export function newRunState(runId: string, root: string, ip: string): RunState {
  return {
    runId,
    root,
    ip,
    netnsCreated: false,
    sudoersFile: null,
    createdUsers: [],
    aclGrants: [],
    enginePid: null,
  };
}

export async function saveRunState(file: string, state: RunState): Promise<void> {
  await writeFile(file, `${JSON.stringify(state)}\n`, { mode: 0o600 });
}
