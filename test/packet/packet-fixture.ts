// An Audit Packet written by the code `run` writes one with, around signed sample evidence.
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAuditPacket } from '../../src/cli/audit-packet.js';
import type { ReceiptFields } from '../../src/receipts/builder.js';
import { toHex } from '../../src/receipts/bytes.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { parsePolicy, type Policy } from '../../src/policy/index.js';
import { packetPolicy } from '../../src/packet/report-files.js';
import {
  ENGINE_LOG,
  THIS_ENGINE,
  type PacketPosture,
  type PacketRun,
} from '../../src/packet/packet-json.js';
import { runCapsuleSha256 } from '../../src/packet/run-capsule.js';
import {
  SAMPLE_POLICY,
  SAMPLE_SEED,
  sampleDecision,
  sampleEvidence,
} from '../receipts/sample-evidence.js';

const SHARD_BYTES = 4 * 1024 * 1024;

/** The run and its posture the sample packet states; its chain is opened for them. */
const RUN: PacketRun = {
  provider: 'github_actions',
  repository: 'acme/widgets',
  workflow: 'triage',
  runId: '4242',
  runAttempt: '1',
  ref: 'refs/heads/main',
  sha: 'c0ffee0000000000000000000000000000000000',
  agentIdentity: 'agent <ci>',
  startedAt: '2026-11-26T22:00:00Z',
  completedAt: '2026-11-26T22:01:00Z',
  agentExitCode: 0,
};
const POSTURE: PacketPosture = {
  engine: THIS_ENGINE,
  runnerOs: 'Linux',
  runnerArch: 'X64',
  networkNamespace: 'pe-0000000001',
  agentUser: 'pipelock-agent',
  agentUid: 1001,
  hostUser: 'pipelock-egress',
  hostUid: 1002,
  proxyUrl: 'http://127.0.0.1:8888',
  scriptBasename: 'agent.sh',
  scriptArgCount: 0,
};
const CONFIG_PATH = 'fixtures/policy.yaml';

export interface SamplePacketOptions {
  readonly decide?: (i: number) => ReceiptFields;
  /** The run pinned its key (verdict valid), as a run with --public-key does (default). */
  readonly pinned?: boolean;
  /** The chain's session open binds the run capsule, as `run` opens it (default). */
  readonly bindRun?: boolean;
  /** The signing key's seed (default: the sample key's). */
  readonly seed?: Uint8Array;
}

export async function writeSamplePacket(
  out: string,
  decisions: number,
  {
    decide = sampleDecision,
    pinned = true,
    bindRun = true,
    seed = SAMPLE_SEED,
  }: SamplePacketOptions = {},
): Promise<void> {
  mkdirSync(join(out, 'evidence'), { recursive: true });
  // In files of at most 4 MiB, as the engine rotates them.
  const shards: string[][] = [[]];
  let bytes = 0;
  const capsule = bindRun ? runCapsuleSha256(RUN, POSTURE, CONFIG_PATH) : undefined;
  for (const { text } of sampleEvidence(decisions, seed, decide, capsule)) {
    const size = Buffer.byteLength(text);
    if (bytes + size > SHARD_BYTES) {
      shards.push([]);
      bytes = 0;
    }
    shards.at(-1)?.push(text);
    bytes += size;
  }
  shards.forEach((lines, i) =>
    writeFileSync(join(out, 'evidence', `evidence-proxy-${i}.jsonl`), lines.join('')),
  );
  writeFileSync(join(out, ENGINE_LOG), engineLog(decisions, decide));
  const publicKey = createNodeBackend().ed25519PublicKey(seed);
  const quiet = { out: () => {}, err: () => {}, readFile: (path: string) => readFile(path) };
  await writeAuditPacket(
    {
      out,
      policyBytes: SAMPLE_POLICY,
      publicKey,
      pinnedKey: pinned ? toHex(publicKey) : undefined,
      run: RUN,
      posture: POSTURE,
      policy: packetPolicy(samplePolicy(), CONFIG_PATH),
    },
    quiet,
  );
}

/** The engine's log of the sample decisions, one line each, as `proxy` writes it. */
function engineLog(decisions: number, decide: (i: number) => ReceiptFields): string {
  let log = '';
  for (let i = 1; i <= decisions; i++) {
    const { verdict, method, target, layer, pattern, request_id } = decide(i);
    const line = { event: 'decision', verdict, method, target, layer, reason: pattern, request_id };
    log += `${JSON.stringify(line)}\n`;
  }
  return log;
}

function samplePolicy(): Policy {
  const parsed = parsePolicy(SAMPLE_POLICY, 'policy.yaml');
  if (!parsed.ok) throw new Error(`the sample policy does not load: ${parsed.errors[0]?.message}`);
  return parsed.policy;
}
