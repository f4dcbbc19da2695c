// What packet.json states about its run rather than counts from the receipts: the run
// (repository, times, the agent's exit code), the boundary's posture, when it was written and
// where the policy came from. The chain binds part of it (run-binding.ts); the check remakes
// packet.json and summary.md from these and the verified chain. Pure.
import * as z from 'zod';
import { readJsonDocument, type DocumentReading } from '../../json-document.js';
import { withoutUndefined, type PacketPosture, type PacketRun } from '../packet-json.js';

export interface PacketStatements {
  readonly generatedAt: string;
  readonly run: PacketRun;
  readonly posture: PacketPosture;
  readonly configPath: string;
  /** Whether the packet names the key verification pinned when it was written. */
  readonly namesPinnedKey: boolean;
}

const text = z.string();
const count = z.number().int().nonnegative();

const runSchema = z
  .object({
    provider: z.enum(['github_actions', 'self_hosted', 'local']),
    repository: text.optional(),
    workflow: text.optional(),
    run_id: text.optional(),
    run_attempt: text.optional(),
    ref: text.optional(),
    sha: text.optional(),
    agent_identity: text,
    started_at: text,
    completed_at: text,
    agent_exit_code: z.number().int(),
  })
  .transform((run): PacketRun => ({
    provider: run.provider,
    ...withoutUndefined({
      repository: run.repository,
      workflow: run.workflow,
      runId: run.run_id,
      runAttempt: run.run_attempt,
      ref: run.ref,
      sha: run.sha,
    }),
    agentIdentity: run.agent_identity,
    startedAt: run.started_at,
    completedAt: run.completed_at,
    agentExitCode: run.agent_exit_code,
  }));

const postureSchema = z
  .object({
    engine: text,
    runner_os: text,
    runner_arch: text.optional(),
    network_namespace: text,
    agent_user: text,
    agent_uid: count,
    host_user: text,
    host_uid: count,
    proxy_url: text,
    script_basename: text,
    script_arg_count: count,
  })
  .transform((posture): PacketPosture => ({
    engine: posture.engine,
    runnerOs: posture.runner_os,
    ...withoutUndefined({ runnerArch: posture.runner_arch }),
    networkNamespace: posture.network_namespace,
    agentUser: posture.agent_user,
    agentUid: posture.agent_uid,
    hostUser: posture.host_user,
    hostUid: posture.host_uid,
    proxyUrl: posture.proxy_url,
    scriptBasename: posture.script_basename,
    scriptArgCount: posture.script_arg_count,
  }));

const statementsSchema = z
  .object({
    generated_at: text,
    run: runSchema,
    posture: postureSchema,
    policy: z.object({ config_path: text }),
    verifier: z.object({ signer_key: text.optional() }),
  })
  .transform((packet): PacketStatements => ({
    generatedAt: packet.generated_at,
    run: packet.run,
    posture: packet.posture,
    configPath: packet.policy.config_path,
    namesPinnedKey: packet.verifier.signer_key !== undefined,
  }));

export function parsePacketStatements(packetJsonText: string): DocumentReading<PacketStatements> {
  return readJsonDocument(statementsSchema, packetJsonText);
}
