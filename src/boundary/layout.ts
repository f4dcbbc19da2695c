// Where one run keeps its files. Everything lives under one root-owned directory per run so
// teardown is one removal; the engine's part is its own and the agent's part is read-only.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export const RUNTIME_BASE = '/run/pipelock-egress';

export interface RunLayout {
  readonly runId: string;
  readonly netns: string;
  /** root 0711: traversable to the known names below, not listable. */
  readonly root: string;
  /** root 0600: what teardown needs to finish a killed run. */
  readonly stateFile: string;
  /** root 0755: copies of node and the CLI bundle, when the originals are out of other users' reach. */
  readonly binDir: string;
  /** pipelock-host 0700: signing key, policy, evidence; masked inside the boundary. */
  readonly engineDir: string;
  readonly evidenceDir: string;
  readonly signingKey: string;
  readonly policyFile: string;
  readonly upstreamCaFile: string;
  /** root 0755: the agent's script (0555, under its own name), the probe and the CA bundle (0444). */
  readonly agentDir: string;
  readonly agentScript: string;
  readonly probeScript: string;
  readonly caBundle: string;
  /** pipelock-agent 0700: the agent's HOME. */
  readonly home: string;
  /** root 0700: empty directories where the agent's private directories are put together. */
  readonly stagesDir: string;
  /** root 0600: the engine's log lines (decisions, errors). */
  readonly engineLog: string;
}

export function runLayout(runId: string, scriptName: string, base = RUNTIME_BASE): RunLayout {
  const root = join(base, runId);
  const engineDir = join(root, 'engine');
  const agentDir = join(root, 'agent');
  return {
    runId,
    netns: runId,
    root,
    stateFile: join(root, 'state.json'),
    binDir: join(root, 'bin'),
    engineDir,
    evidenceDir: join(engineDir, 'evidence'),
    signingKey: join(engineDir, 'signing-key'),
    policyFile: join(engineDir, 'policy.yaml'),
    upstreamCaFile: join(engineDir, 'upstream-ca.pem'),
    agentDir,
    agentScript: join(agentDir, 'script', scriptName),
    probeScript: join(agentDir, 'pipelock-probe.sh'),
    caBundle: join(agentDir, 'ca-bundle.pem'),
    home: join(root, 'home'),
    stagesDir: join(root, 'stages'),
    engineLog: join(root, 'engine.log'),
  };
}

const RUN_ID = /^pe-[0-9a-f]{10}$/;

export function newRunId(): string {
  return `pe-${randomBytes(5).toString('hex')}`;
}

export function isRunId(text: string): boolean {
  return RUN_ID.test(text);
}
