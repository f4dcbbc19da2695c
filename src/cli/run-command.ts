// `pipelock-egress run`: the whole boundary for local use (root), as the action runs it. The
// request is checked in full and the machine preflighted before anything is created; the
// agent's exit code is ours, unless the boundary or the evidence failed.
import { randomBytes } from 'node:crypto';
import { lchown, realpath } from 'node:fs/promises';
import { makeDirectories } from './make-directories.js';
import { basename, join } from 'node:path';
import { runInBoundary } from '../boundary/boundary.js';
import { BoundaryError } from '../boundary/command.js';
import { boundaryTools, gatherHostFacts, preflightProblems } from '../boundary/preflight.js';
import { encodePrivateKeyPem, publicKeyHex } from '../receipts/index.js';
import {
  ENGINE_LOG,
  EVIDENCE_DIR,
  PACKET_FILES,
  packetRunFromEnv,
  THIS_ENGINE,
  POLICY_FILE,
  POLICY_HASH_FILE,
  PUBLIC_KEY_FILE,
  RECEIPTS_FILE,
} from '../packet/packet-json.js';
import { packetPolicy } from '../packet/report-files.js';
import { runCapsuleSha256 } from '../packet/run-capsule.js';
import { writeAuditPacket } from './audit-packet.js';
import { AGENT_USER, HOST_USER } from '../boundary/users.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import type { CryptoBackend } from '../receipts/index.js';
import { type RunOutcome, writeRunOutcome } from './run-outcome.js';
import type { CliIo } from './io.js';
import { parseRunRequest, RunRequestError, type RunRequest } from './run-request.js';

const PREFIX = 'pipelock-egress run';

export async function runCommand(args: readonly string[], io: CliIo): Promise<number> {
  const backend = createNodeBackend();
  let request: RunRequest;
  try {
    request = await parseRunRequest(args, io, backend);
  } catch (error) {
    if (!(error instanceof RunRequestError)) throw error;
    for (const problem of error.problems) io.err(`${PREFIX}: ${problem}\n`);
    io.err(`${PREFIX}: nothing was started or created\n`);
    const refused = { exit_code: 1, boundary_failure: null, refused: error.problems };
    return reportOutcome(error.outcomeFile, refused, io);
  }
  for (const warning of request.secretWarnings) io.err(`${PREFIX}: warning: ${warning}\n`);
  return reportOutcome(request.outcomeFile, await preflightAndRun(request, io, backend), io);
}

/** The run's exit code, once its outcome is in the --outcome-file (when one was asked for). */
async function reportOutcome(
  file: string | undefined,
  outcome: RunOutcome,
  io: CliIo,
): Promise<number> {
  if (file === undefined) return outcome.exit_code;
  try {
    await writeRunOutcome(file, outcome);
  } catch (error) {
    io.err(`${PREFIX}: writing --outcome-file ${file}: ${(error as Error).message}\n`);
    return 1;
  }
  return outcome.exit_code;
}

async function preflightAndRun(
  request: RunRequest,
  io: CliIo,
  backend: CryptoBackend,
): Promise<RunOutcome> {
  const facts = await gatherHostFacts();
  const problems = preflightProblems(facts, { acl: request.writable.length > 0 });
  if (problems.length > 0) {
    for (const problem of problems) io.err(`${PREFIX}: preflight: ${problem}\n`);
    const summary = `${problems.length} preflight problem${problems.length === 1 ? '' : 's'}; nothing was created`;
    io.err(`${PREFIX}: ${summary}\n`);
    return { exit_code: 1, boundary_failure: summary };
  }

  // What the packet will state about the run, as far as it is known before the engine starts:
  // the engine binds it into the chain (run-capsule.ts).
  const runStatements = { ...packetRunFromEnv(request.callerEnv), agentIdentity: request.identity };
  const postureStatements = {
    engine: THIS_ENGINE,
    runnerOs: request.callerEnv['RUNNER_OS'] ?? 'Linux',
    ...(request.callerEnv['RUNNER_ARCH'] ? { runnerArch: request.callerEnv['RUNNER_ARCH'] } : {}),
    networkNamespace: request.runId,
    scriptBasename: basename(request.script),
    scriptArgCount: request.args.length,
  };
  const seed = request.seed ?? new Uint8Array(randomBytes(32));
  const publicKey = backend.ed25519PublicKey(seed);
  const out = request.evidenceOutput;
  const cancel = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    io.err(`${PREFIX}: ${signal}: stopping the agent, sealing the evidence, tearing down\n`);
    received = signal;
    cancel.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await makeDirectories(out, 0o755);
    const outcome = await runInBoundary({
      runId: request.runId,
      tools: boundaryTools(facts),
      node: process.execPath,
      cli: await realpath(process.argv[1] ?? ''),
      policyBytes: request.policyBytes,
      signingKeyPem: encodePrivateKeyPem(seed),
      hiddenFiles: request.signingKeyFile === undefined ? [] : [request.signingKeyFile],
      identity: request.identity,
      runCapsuleSha256: runCapsuleSha256(runStatements, postureStatements, request.policyFile),
      pins: request.pins,
      upstreamCaPem: request.upstreamCaPem,
      secretValues: request.secretValues,
      script: request.script,
      args: request.args,
      workdir: request.workdir,
      writable: request.writable,
      maxProcesses: request.maxProcesses,
      callerEnv: request.callerEnv,
      evidenceCopyDir: join(out, EVIDENCE_DIR),
      engineLogCopy: join(out, ENGINE_LOG),
      evidenceOwner: invokerOf(process.env),
      log: (line) => io.err(`${PREFIX}: ${line}\n`),
      cancel: cancel.signal,
    });
    if (outcome.signerKey !== publicKeyHex(publicKey)) {
      throw new BoundaryError(
        `the engine signed with ${outcome.signerKey}, not the run's key ${publicKeyHex(publicKey)}`,
      );
    }
    const { verified, report } = await writeAuditPacket(
      {
        out,
        policyBytes: request.policyBytes,
        publicKey,
        pinnedKey: request.pinnedKey,
        run: {
          ...runStatements,
          startedAt: outcome.startedAt,
          completedAt: outcome.completedAt,
          agentExitCode: outcome.agentExitCode,
        },
        posture: {
          ...postureStatements,
          agentUser: AGENT_USER,
          agentUid: outcome.agentUid,
          hostUser: HOST_USER,
          hostUid: outcome.hostUid,
          proxyUrl: outcome.proxyUrl,
        },
        policy: packetPolicy(request.policy, request.policyFile),
      },
      io,
    );
    await giveToInvoker(out);
    io.err(
      `${PREFIX}: ${outcome.sealed.receipts} receipts sealed; verdict ${report.verdict}; Audit Packet in ${out}\n`,
    );
    if (outcome.teardownFailure !== undefined) return boundaryFailed(outcome.teardownFailure, io);
    if (verified !== 0) {
      io.err(`${PREFIX}: the evidence did not verify (${report.verdict}); failing the run\n`);
      return ended(1);
    }
    if (report.verdict === 'self_consistent_only') {
      io.err(
        `${PREFIX}: warning: signed with a key made for this run; pass --signing-key and --public-key to make the verdict valid\n`,
      );
    }
    if (received !== undefined) return ended(128 + (received === 'SIGINT' ? 2 : 15));
    return ended(outcome.agentExitCode);
  } catch (error) {
    if (!(error instanceof BoundaryError)) throw error;
    return boundaryFailed(error.message, io);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function ended(exitCode: number): RunOutcome {
  return { exit_code: exitCode, boundary_failure: null };
}

function boundaryFailed(failure: string, io: CliIo): RunOutcome {
  io.err(`${PREFIX}: boundary failed: ${failure}\n`);
  return { exit_code: 1, boundary_failure: failure };
}

/** Whoever ran `run` through sudo: the packet and the evidence are theirs, not root's. */
function invokerOf(env: NodeJS.ProcessEnv): { uid: number; gid: number } | null {
  const uid = env['SUDO_UID'];
  const gid = env['SUDO_GID'];
  if (uid === undefined || gid === undefined || !/^[0-9]+$/.test(uid) || !/^[0-9]+$/.test(gid))
    return null;
  return { uid: Number(uid), gid: Number(gid) };
}

/** The packet's own files (the evidence was given to the invoker as it was collected). */
async function giveToInvoker(out: string): Promise<void> {
  const invoker = invokerOf(process.env);
  if (invoker === null) return;
  const written = [POLICY_FILE, POLICY_HASH_FILE, PUBLIC_KEY_FILE, RECEIPTS_FILE];
  const files = [
    out,
    ...[...written, ...Object.values(PACKET_FILES)].map((name) => join(out, name)),
  ];
  for (const file of files) await lchown(file, invoker.uid, invoker.gid);
}
