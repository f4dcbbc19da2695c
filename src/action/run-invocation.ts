// The privileged half of the action is `pipelock-egress run`, started as root: directly when
// the action already runs as root, else through passwordless `sudo -n`. Nothing secret goes
// on its command line: the signing key and the agent's environment travel in files only the
// runner user can read. Pure.
import type { NamePin } from '../engine/name-pin.js';
import { formatIp } from '../policy/ip.js';

export interface RunInvocation {
  readonly node: string;
  readonly cli: string;
  readonly asRoot: boolean;
  readonly runId: string;
  readonly policy: string;
  readonly workdir: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly evidenceOutput: string;
  readonly identity: string;
  readonly envFile: string;
  readonly outcomeFile: string;
  readonly signingKeyFile: string | undefined;
  readonly publicKey: string | undefined;
  readonly writable: readonly string[];
  readonly pins: readonly NamePin[];
  readonly upstreamCa: string | undefined;
}

export function runArgv(run: RunInvocation): string[] {
  const pin = ({ host, address }: NamePin): string =>
    `${host}:${address.family === 6 ? `[${formatIp(address)}]` : formatIp(address)}`;
  return [
    ...(run.asRoot ? [] : ['sudo', '-n', '--']),
    run.node,
    run.cli,
    'run',
    '--run-id',
    run.runId,
    '--policy',
    run.policy,
    '--workdir',
    run.workdir,
    '--evidence-output',
    run.evidenceOutput,
    '--identity',
    run.identity,
    '--agent-env-file',
    run.envFile,
    '--outcome-file',
    run.outcomeFile,
    ...(run.signingKeyFile === undefined ? [] : ['--signing-key', run.signingKeyFile]),
    ...(run.publicKey === undefined ? [] : ['--public-key', run.publicKey]),
    ...run.writable.flatMap((path) => ['--writable', path]),
    ...run.pins.flatMap((p) => ['--resolve', pin(p)]),
    ...(run.upstreamCa === undefined ? [] : ['--upstream-ca', run.upstreamCa]),
    '--',
    run.script,
    ...run.args,
  ];
}

/** The input each of run's options comes from (the rest are the action's own doing). */
const INPUT_OF_OPTION: Readonly<Record<string, string>> = {
  policy: 'policy-config',
  workdir: 'working-directory',
  'evidence-output': 'evidence-output',
  identity: 'agent-identity',
  'signing-key': 'signing-key',
  'public-key': 'public-key',
  writable: 'writable-paths',
  resolve: 'resolve',
  'upstream-ca': 'upstream-ca',
};

/** A problem run found with its options, told in the action's input names. */
export function inInputNames(problem: string): string {
  const input = (name: string) => INPUT_OF_OPTION[name];
  return problem
    .replace(/^--([a-z-]+) /, (start, name: string) =>
      input(name) ? `input ${input(name)}: ` : start,
    )
    .replace(/--([a-z-]+)/g, (option, name: string) =>
      input(name) ? `input ${input(name)}` : option,
    )
    .replace(/^script /, 'input agent-script: ');
}

/** Variable names whose values are masked in the log even if nothing declared them secret. */
export function looksSecret(name: string): boolean {
  return /(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY)/i.test(name);
}

export interface RunFacts {
  readonly verdict: string;
  readonly agentExitCode: number;
  /** What failed in the boundary after the packet was written (its teardown), if anything. */
  readonly boundaryFailure: string | undefined;
}

export interface StepResult {
  readonly failed: string | undefined;
  readonly warning: string | undefined;
}

/**
 * DESIGN §8's exit rules, given a packet (a run without one failed before it could claim
 * anything). A boundary that failed fails the step whatever the verdict and the agent say.
 */
export function stepResult(packet: RunFacts, failOnVerifierError: boolean): StepResult {
  const warning =
    packet.verdict === 'self_consistent_only'
      ? 'the evidence is only self-consistent: it was signed with a key made for this run, so anyone could have produced it. Set the signing-key input (a key from `pipelock-egress keygen`, kept in a secret) and public-key (its public half, committed) to get a valid verdict.'
      : undefined;
  if (packet.boundaryFailure !== undefined) {
    return {
      failed: `the boundary failed: ${packet.boundaryFailure}. The Audit Packet was written; the post step's cleanup finishes the teardown, or says what is left`,
      warning,
    };
  }
  if ((packet.verdict === 'invalid' || packet.verdict === 'error') && failOnVerifierError) {
    return {
      failed: `the evidence verdict is ${packet.verdict}; failing because fail-on-verifier-error is true`,
      warning,
    };
  }
  if (packet.agentExitCode !== 0) {
    return { failed: `the agent script exited with ${packet.agentExitCode}`, warning };
  }
  return { failed: undefined, warning };
}
