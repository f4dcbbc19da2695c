// The run a chain is opened for. Its SHA-256 goes into the signed session open as
// `posture_capsule_sha256`, which the g1 genesis every later receipt hangs from covers: a
// packet's statements about its run (repository, workflow, commit, agent, script, engine)
// can then be checked against the signed chain, and a chain cannot be passed off as another
// run's. Only what is known before the engine starts is in it. Pure.
import { createHash } from 'node:crypto';
import { encodeSorted, type PacketPosture, type PacketRun } from './packet-json.js';

const CAPSULE_VERSION = 'pipelock-egress.run-capsule.v1';

type CapsuleRun = Pick<
  PacketRun,
  'provider' | 'repository' | 'workflow' | 'runId' | 'runAttempt' | 'ref' | 'sha' | 'agentIdentity'
>;
type CapsulePosture = Pick<
  PacketPosture,
  'engine' | 'runnerOs' | 'runnerArch' | 'networkNamespace' | 'scriptBasename' | 'scriptArgCount'
>;

/**
 * Lowercase hex SHA-256 of the capsule of a run, its posture and its policy's path: their
 * fields named above, encoded with sorted keys (absent fields left out). Anything else the
 * objects hold is not in it.
 */
export function runCapsuleSha256(
  run: CapsuleRun,
  posture: CapsulePosture,
  configPath: string,
): string {
  const capsule = {
    version: CAPSULE_VERSION,
    run: {
      provider: run.provider,
      repository: run.repository,
      workflow: run.workflow,
      runId: run.runId,
      runAttempt: run.runAttempt,
      ref: run.ref,
      sha: run.sha,
      agentIdentity: run.agentIdentity,
    },
    posture: {
      engine: posture.engine,
      runnerOs: posture.runnerOs,
      runnerArch: posture.runnerArch,
      networkNamespace: posture.networkNamespace,
      scriptBasename: posture.scriptBasename,
      scriptArgCount: posture.scriptArgCount,
    },
    configPath,
  };
  return createHash('sha256').update(encodeSorted(capsule)).digest('hex');
}
