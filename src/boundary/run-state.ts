// What one run has changed on the machine, saved after every change so that teardown (in the
// run itself, or in the action's post step after the run was killed) can undo exactly that.
import { rename, writeFile } from 'node:fs/promises';
import * as z from 'zod';
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

const id = z.number().int().nonnegative();
const path = z.string().startsWith('/');
const owner = z.strictObject({ uid: id, gid: id });

// Typed as RunState: the schema cannot drift from the interface it reads.
const runStateSchema: z.ZodType<RunState> = z.strictObject({
  runId: z.string(),
  root: path,
  ip: path,
  runProcess: z.strictObject({ pid: id, startTime: z.string() }),
  netnsCreated: z.boolean(),
  sudoersFile: path.nullable(),
  createdUsers: z.array(z.string()),
  aclGrants: z.array(
    z.strictObject({ path, uid: id, ownerUid: id, ownerGid: id, hadAcls: z.boolean() }),
  ),
  enginePid: id.nullable(),
  agentStarted: z.boolean(),
  evidence: z.strictObject({
    runId: z.string(),
    evidenceDir: path,
    engineLog: path,
    into: path,
    engineLogCopy: path,
    owner: owner.nullable(),
  }),
  evidenceCollected: z.boolean(),
});

/** The state saved in `root` for run `runId`, or why the text is not that. */
export function parseRunState(
  text: string,
  runId: string,
  root: string,
): { ok: true; state: RunState } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `not JSON (${(error as Error).message})` };
  }
  const parsed = runStateSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      ok: false,
      problem: `not a run's state (${first?.path.join('.') || 'the whole file'}: ${first?.message ?? 'invalid'})`,
    };
  }
  const state = parsed.data;
  if (state.runId !== runId || state.root !== root || state.evidence.runId !== runId)
    return { ok: false, problem: `the state of another run (${state.runId} in ${state.root})` };
  return { ok: true, state };
}
