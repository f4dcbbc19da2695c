// Does the chain bind the run packet.json states? Our session opens carry the run capsule's
// SHA-256 (run-capsule.ts): then the run, posture and policy path must hash to it. Every
// request's receipt names the agent, too; in a chain without a capsule (Pipelock's, or older)
// that is all that binds the run. Pure.
import { PACKET_FILES } from '../packet-json.js';
import { runCapsuleSha256 } from '../run-capsule.js';
import type { ChainSummary } from '../summarize.js';
import { mismatch, type FileCheck } from './file-check.js';
import type { PacketStatements } from './packet-statements.js';

export interface RunBinding {
  /** The chain binds the run capsule (not only the agent). */
  readonly bound: boolean;
  /** What packet.json states that the chain contradicts. */
  readonly mismatch?: FileCheck;
}

/** The receipts name the agent they were made for: the run must name the same one. */
function agentCheck(statements: PacketStatements, summary: ChainSummary): FileCheck | undefined {
  const identity = statements.run.agentIdentity;
  const others = summary.actors.filter((actor) => actor !== identity);
  if (others.length === 0) return undefined;
  return mismatch(
    PACKET_FILES.packet,
    `run.agent_identity is ${JSON.stringify(identity)}; the receipts were made for ${others.map((actor) => JSON.stringify(actor)).join(', ')}`,
  );
}

export function runBinding(statements: PacketStatements, summary: ChainSummary): RunBinding {
  const capsules = summary.runCapsules;
  const bound = !(capsules.length === 0 || (capsules.length === 1 && capsules[0] === ''));
  const contradiction = bound ? capsuleCheck(statements, capsules) : undefined;
  const found = contradiction ?? agentCheck(statements, summary);
  return { bound, ...(found === undefined ? {} : { mismatch: found }) };
}

function capsuleCheck(
  statements: PacketStatements,
  capsules: readonly string[],
): FileCheck | undefined {
  const stated = runCapsuleSha256(statements.run, statements.posture, statements.configPath);
  const others = capsules.filter((capsule) => capsule !== stated);
  if (others.length === 0) return undefined;
  return mismatch(
    PACKET_FILES.packet,
    `its run, posture and policy.config_path are not those the chain was opened for: the session open binds run capsule ${others.map((c) => c || '(none)').join(', ')}, packet.json gives ${stated}`,
  );
}
