// The action's main step: validate everything, then run the agent in the boundary.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { newRunId } from '../boundary/layout.js';
import { summarizeEvidence } from '../packet/evidence-files.js';
import { EVIDENCE_DIR, PACKET_FILES } from '../packet/packet-json.js';
import { formatPolicyError, parsePolicy, type Policy } from '../policy/index.js';
import { existingDirectory, fileInside } from './files.js';
import { parseInputs, type ActionInputs } from './inputs.js';
import { checkKeyInputs, type KeyInputs } from './key-inputs.js';
import type { KeySource } from '../cli/key-argument.js';
import { hasActionsRuntime, uploadPacket } from './artifact.js';
import { cliBundle, inheritOutput, passwordlessSudo } from './privileged.js';
import { inInputNames, looksSecret, runArgv, stepResult } from './run-invocation.js';
import type { ActionRunner } from './runner.js';
import { STATE_KEYS } from './state.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { readPolicyFile } from '../cli/policy-file.js';
import type { DocumentReading } from '../json-document.js';
import { readRunOutcome, type RunOutcome } from '../cli/run-outcome.js';

export async function runMain(runner: ActionRunner): Promise<void> {
  try {
    await validateAndRun(runner);
  } catch (error) {
    runner.setFailed(error instanceof Error ? error.message : String(error));
  }
}

async function validateAndRun(runner: ActionRunner): Promise<void> {
  if (runner.platform !== 'linux') {
    throw new Error(
      `Linux runners only: this runner is ${runner.platform}. The boundary needs Linux network namespaces and iptables, so the agent was not run (it never runs unprotected).`,
    );
  }
  const parsed = parseInputs(runner.readInputs());
  if (!parsed.ok)
    throw new Error(`invalid inputs; nothing was started:\n${parsed.errors.join('\n')}`);
  const { inputs } = parsed;

  const { workdir, policyPath, policy, keys, script } = await checkRunInputs(inputs);
  runner.info(
    `policy ${inputs['policy-config']} is valid (sha256 ${policy.hash}, ${policy.egress.length} egress rules)`,
  );
  const asRoot = runner.uid === 0;
  if (!asRoot && !(await passwordlessSudo())) {
    throw new Error(
      'the boundary needs root: run the action as root, or on a runner whose user has passwordless sudo (GitHub-hosted runners do); nothing was started',
    );
  }
  const cli = await cliBundle();
  const runId = newRunId();
  runner.saveState(STATE_KEYS.boundaryRunId, runId);
  runner.saveState(STATE_KEYS.asRoot, String(asRoot));
  maskSecrets(runner, keys.signing, policy.secrets);

  const evidenceOutput = resolve(inputs['evidence-output']);
  const temp = await mkdtemp(join(runner.env['RUNNER_TEMP'] || tmpdir(), 'pipelock-egress-'));
  // A main step killed outright leaves it (with an inline signing key in it): post removes it.
  runner.saveState(STATE_KEYS.tempDir, temp);
  let exitCode: number | null;
  let ended: DocumentReading<RunOutcome>;
  try {
    const envFile = join(temp, 'agent-env.json');
    const outcomeFile = join(temp, 'run-outcome.json');
    await writeFile(envFile, JSON.stringify(agentCallerEnv(runner.env)), { mode: 0o600 });
    const signingKeyFile = await keyFile(keys.signing, temp);
    const argv = runArgv({
      node: process.execPath,
      cli,
      asRoot,
      runId,
      policy: policyPath,
      workdir,
      script,
      args: inputs['agent-args'],
      evidenceOutput,
      identity: inputs['agent-identity'],
      envFile,
      outcomeFile,
      signingKeyFile,
      publicKey: keys.publicKey,
      writable: inputs['writable-paths'].map((path) => resolve(workdir, path)),
      pins: inputs.resolve,
      upstreamCa:
        inputs['upstream-ca'] === undefined ? undefined : resolve(workdir, inputs['upstream-ca']),
    });
    runner.info(
      `starting pipelock-egress run ${runId}${asRoot ? '' : ' through sudo'}: it checks the rest of the inputs, then runs ${script} inside the boundary`,
    );
    const resumeCommands = runner.pauseCommands();
    try {
      exitCode = await inheritOutput(argv);
    } finally {
      resumeCommands();
    }
    ended = await readRunOutcome(outcomeFile);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  const refused = ended.ok ? (ended.value.refused ?? []) : [];
  if (refused.length > 0) {
    throw new Error(
      `invalid inputs; nothing was started:\n${refused.map(inInputNames).join('\n')}`,
    );
  }
  runner.setOutput('policy-hash', policy.hash);
  // Fail closed: a run that could not say how it ended (killed, crashed) may have left the
  // boundary half torn down.
  const boundaryFailure = ended.ok
    ? (ended.value.boundary_failure ?? undefined)
    : `pipelock-egress run exited ${exitCode} without saying how it ended (its outcome file: ${ended.error})`;

  const packet = await readPacket(evidenceOutput, runId);
  if (packet === undefined) {
    throw new Error(
      `the boundary failed (${boundaryFailure ?? `pipelock-egress run exited ${exitCode}`}) before the agent's evidence could be packaged; see the log above. No packet, no verdict.`,
    );
  }
  runner.setOutput('audit-packet-path', evidenceOutput);
  runner.setOutput('receipt-count', packet.receiptCount);
  runner.setOutput('verifier-verdict', packet.verdict);
  runner.setOutput('allowed-count', packet.allowed);
  runner.setOutput('blocked-count', packet.blocked);
  runner.setOutput('agent-exit-code', packet.agentExitCode);

  await addCliToPath(runner, cli);
  if (inputs['job-summary']) {
    const markdown = await readFile(join(evidenceOutput, PACKET_FILES.summary), 'utf8');
    if (!(await runner.appendSummary(markdown))) {
      runner.notice(
        `no job summary on this runner; the summary is ${join(evidenceOutput, PACKET_FILES.summary)}`,
      );
    }
  }
  if (inputs['upload-artifact']) {
    if (!hasActionsRuntime(process.env)) {
      runner.notice(
        `no Actions runtime (a local run): artifact upload skipped; the Audit Packet is at ${evidenceOutput}`,
      );
    } else {
      try {
        const id = await uploadPacket(inputs['artifact-name'], evidenceOutput);
        runner.setOutput('artifact-id', id);
        runner.info(`uploaded the Audit Packet as artifact ${inputs['artifact-name']} (id ${id})`);
      } catch (error) {
        throw new Error(
          `uploading the Audit Packet as artifact ${inputs['artifact-name']} failed: ${(error as Error).message}; the packet is at ${evidenceOutput}`,
          { cause: error },
        );
      }
    }
  }
  const result = stepResult({ ...packet, boundaryFailure }, inputs['fail-on-verifier-error']);
  if (result.warning !== undefined) runner.warning(result.warning);
  if (result.failed !== undefined) runner.setFailed(result.failed);
}

interface CheckedInputs {
  readonly workdir: string;
  readonly policyPath: string;
  readonly policy: Policy;
  readonly keys: KeyInputs;
  readonly script: string;
}

/**
 * What the action checks of its inputs before it starts `run` (which checks the rest): every
 * problem at once. Paths inside the working directory are checked only once it is one.
 */
async function checkRunInputs(inputs: ActionInputs): Promise<CheckedInputs> {
  const problems: string[] = [];
  const checked = async <T>(check: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await check();
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
      return undefined;
    }
  };
  const workdir = await checked(() =>
    existingDirectory(inputs['working-directory'], 'working-directory'),
  );
  const inside = (input: 'policy-config' | 'agent-script') =>
    workdir === undefined
      ? Promise.resolve(undefined)
      : checked(() => fileInside(workdir, inputs[input], input));
  const policyPath = await inside('policy-config');
  const policy =
    policyPath === undefined ? undefined : await checked(() => readPolicyInput(policyPath, inputs));
  const keys =
    workdir === undefined
      ? undefined
      : await checked(() =>
          checkKeyInputs(
            { signing: inputs['signing-key'], publicKey: inputs['public-key'] },
            workdir,
            createNodeBackend(),
          ),
        );
  const script = await inside('agent-script');
  const external =
    inputs['enforcement-binary'] !== undefined ? 'enforcement-binary' : 'pipelock-version';
  if (inputs[external] !== undefined) {
    problems.push(
      `input ${external}: not available yet: driving an external pipelock has not landed; remove ${external} to use the built-in engine`,
    );
  }
  if (
    problems.length > 0 ||
    workdir === undefined ||
    policyPath === undefined ||
    policy === undefined ||
    keys === undefined ||
    script === undefined
  ) {
    throw new Error(`invalid inputs; nothing was started:\n${problems.join('\n')}`);
  }
  return { workdir, policyPath, policy, keys, script };
}

/** The step's environment for the agent: our own inputs stay behind (the signing key may be one). */
function agentCallerEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !entry[0].startsWith('INPUT_'),
    ),
  );
}

function maskSecrets(
  runner: ActionRunner,
  signingKey: KeySource | undefined,
  secrets: readonly { env: string }[],
): void {
  if (signingKey !== undefined && 'inline' in signingKey) mask(runner, signingKey.inline);
  const bound = new Set(secrets.map((binding) => binding.env));
  for (const [name, value] of Object.entries(runner.env)) {
    if (value !== undefined && value.length >= 4 && (bound.has(name) || looksSecret(name)))
      mask(runner, value);
  }
}

/**
 * A value masked whole and, when it spans lines (a PEM key, a JSON credential), line by line:
 * the runner matches masks within one line of the log.
 */
function mask(runner: ActionRunner, value: string): void {
  runner.setSecret(value);
  for (const line of value.split(/\r?\n/)) {
    const text = line.trim();
    if (text !== value && text.length >= 8 && !text.startsWith('-----')) runner.setSecret(text);
  }
}

async function readPolicyInput(file: string, inputs: ActionInputs): Promise<Policy> {
  let bytes: Uint8Array;
  try {
    bytes = await readPolicyFile(file);
  } catch (error) {
    throw new Error(
      `input policy-config: ${file}: ${(error as Error).message}; give the path of a readable policy YAML file`,
      { cause: error },
    );
  }
  const parsed = parsePolicy(bytes, inputs['policy-config']);
  if (!parsed.ok) {
    throw new Error(
      `input policy-config: the policy is invalid:\n${parsed.errors.map(formatPolicyError).join('\n')}`,
    );
  }
  return parsed.policy;
}

async function keyFile(source: KeySource | undefined, temp: string): Promise<string | undefined> {
  if (source === undefined) return undefined;
  if ('file' in source) return source.file;
  const inline = join(temp, 'signing-key');
  await writeFile(inline, `${source.inline.trim()}\n`, { mode: 0o600 });
  return inline;
}

interface PacketOutputs {
  readonly verdict: string;
  readonly receiptCount: number;
  readonly allowed: number;
  readonly blocked: number;
  readonly agentExitCode: number;
}

/** This run's packet; one an earlier run left in the same place does not count. */
async function readPacket(out: string, runId: string): Promise<PacketOutputs | undefined> {
  let packet: {
    posture: { network_namespace?: string };
    run: { agent_exit_code: number };
    summary: { receipt_count: number };
    verifier: { verdict: string };
  };
  try {
    packet = JSON.parse(await readFile(join(out, PACKET_FILES.packet), 'utf8')) as typeof packet;
  } catch {
    return undefined;
  }
  if (packet.posture.network_namespace !== runId) return undefined;
  const requests = (await summarizeEvidence(join(out, EVIDENCE_DIR))).summary.destinations;
  return {
    verdict: packet.verifier.verdict,
    receiptCount: packet.summary.receipt_count,
    allowed: requests.reduce((sum, d) => sum + d.allowed, 0),
    blocked: requests.reduce((sum, d) => sum + d.blocked, 0),
    agentExitCode: packet.run.agent_exit_code,
  };
}

/** `pipelock-egress` on PATH for the rest of the job (the reference workflow's verify step). */
/**
 * The shim goes into a directory made new for it: under a shared temporary directory (no
 * RUNNER_TEMP), a fixed name could be one the agent made first, and root would write there.
 */
async function addCliToPath(runner: ActionRunner, cli: string): Promise<void> {
  const bin = await mkdtemp(join(runner.env['RUNNER_TEMP'] || tmpdir(), 'pipelock-egress-bin-'));
  await writeFile(
    join(bin, 'pipelock-egress'),
    `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(cli)} "$@"\n`,
    { mode: 0o755, flag: 'wx' },
  );
  runner.addPath(bin);
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
