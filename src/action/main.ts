// The action's main step: validate everything, then run the agent in the boundary.

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { newRunId } from '../boundary/layout.js';
import { summarizeChain } from '../packet/summarize.js';
import { EVIDENCE_DIR, PACKET_FILES } from '../packet/packet-json.js';
import { evidenceFileOrder, readEvidenceDirectory } from '../receipts/index.js';
import { formatPolicyError, parsePolicy } from '../policy/index.js';
import { existingDirectory, fileInside } from './files.js';
import { parseInputs } from './inputs.js';
import { checkKeyInputs } from './key-inputs.js';
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

  const workdir = await existingDirectory(inputs['working-directory'], 'working-directory');
  const policyPath = await fileInside(workdir, inputs['policy-config'], 'policy-config');
  const policy = parsePolicy(await readPolicyInput(policyPath), inputs['policy-config']);
  if (!policy.ok) {
    throw new Error(
      `input policy-config: the policy is invalid; nothing was started:\n${policy.errors.map(formatPolicyError).join('\n')}`,
    );
  }
  runner.info(
    `policy ${inputs['policy-config']} is valid (sha256 ${policy.policy.hash}, ${policy.policy.egress.length} egress rules)`,
  );
  runner.setOutput('policy-hash', policy.policy.hash);
  const keys = await checkKeyInputs(
    { signing: inputs['signing-key'], publicKey: inputs['public-key'] },
    workdir,
    createNodeBackend(),
  );

  if (inputs['enforcement-binary'] !== undefined || inputs['pipelock-version'] !== undefined) {
    const input =
      inputs['enforcement-binary'] !== undefined ? 'enforcement-binary' : 'pipelock-version';
    throw new Error(
      `not available yet: driving an external pipelock (input ${input}) has not landed; remove ${input} to use the built-in engine`,
    );
  }
  const script = await fileInside(workdir, inputs['agent-script'], 'agent-script');
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
  maskSecrets(runner, keys.signing, policy.policy.secrets);

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
      `running ${script} inside the boundary (run ${runId}${asRoot ? '' : ', through sudo'})`,
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

async function readPolicyInput(file: string): Promise<Uint8Array> {
  try {
    return await readPolicyFile(file);
  } catch (error) {
    throw new Error(`input policy-config: ${file}: ${(error as Error).message}`, { cause: error });
  }
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
  const evidence = join(out, EVIDENCE_DIR);
  const names = evidenceFileOrder(await readdir(evidence));
  const read = readEvidenceDirectory(
    await Promise.all(
      names.map(async (name) => ({ name, content: await readFile(join(evidence, name)) })),
    ),
  );
  const requests = summarizeChain(read.ok ? read.value.receipts : []).destinations;
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
