// What one run has changed on the machine, saved after every change so that teardown (in the
// run itself, or in the action's post step after the run was killed) can undo exactly that.
import { rename, writeFile } from 'node:fs/promises';
import type { AccessGrant } from './access.js';
import type { EvidenceCollection } from './evidence-collect.js';
import type { RunProcess } from './run-process.js';

export interface RunState {
  readonly runId: string;
  readonly root: string;
  /** The `ip` tool: teardown lists and removes the namespace with it. */
  readonly ip: string;
  /** The `run` that owns it: cleanup stops it, if it is still running, before taking over. */
  readonly runProcess: RunProcess;
  netnsCreated: boolean;
  sudoersFile: string | null;
  createdUsers: string[];
  /** Paths granted to the agent with ACLs: revoked, and the agent's files given back to the owner. */
  aclGrants: AccessGrant[];
  enginePid: number | null;
  /** Once the agent started, its evidence is kept: teardown collects it if the run could not. */
  agentStarted: boolean;
  readonly evidence: EvidenceCollection;
  evidenceCollected: boolean;
}

export function newRunState(
  runId: string,
  root: string,
  ip: string,
  runProcess: RunProcess,
  evidence: EvidenceCollection,
): RunState {
  return {
    runId,
    root,
    ip,
    runProcess,
    evidence,
    agentStarted: false,
    evidenceCollected: false,
    netnsCreated: false,
    sudoersFile: null,
    createdUsers: [],
    aclGrants: [],
    enginePid: null,
  };
}

/** Written whole or not at all: a run killed mid-save leaves the previous state readable. */
export async function saveRunState(file: string, state: RunState): Promise<void> {
  await writeFile(`${file}.new`, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  await rename(`${file}.new`, file);
}
