// packet.json: Pipelock's Audit Packet v0 (specs/receipts.md §10), filled from the run, the
// receipts and the verification report. Pure; written with sorted keys.
import packageJson from '../../package.json' with { type: 'json' };
import type { VerificationReport } from '../cli/verification-report.js';
import type { ChainSummary } from './summarize.js';

export const PACKET_FILES = {
  packet: 'packet.json',
  evidence: 'evidence.jsonl',
  verifier: 'verification-report.json',
  summary: 'summary.md',
} as const;

/** The packet's other files and directories, beside PACKET_FILES. */
export const EVIDENCE_DIR = 'evidence';
export const ENGINE_LOG = 'engine.log';
export const POLICY_FILE = 'policy.yaml';
export const POLICY_HASH_FILE = 'policy-hash.txt';
export const PUBLIC_KEY_FILE = 'signer-public-key.pem';
export const RECEIPTS_FILE = 'receipts.json';
/** The run CA's certificate, which the engine writes beside its evidence files. */
export const RUN_CA_FILE = 'run-ca.pem';

/** Everything a run writes into the packet's directory. */
export const PACKET_ENTRIES: ReadonlySet<string> = new Set([
  ...Object.values(PACKET_FILES),
  EVIDENCE_DIR,
  ENGINE_LOG,
  POLICY_FILE,
  POLICY_HASH_FILE,
  PUBLIC_KEY_FILE,
  RECEIPTS_FILE,
]);

export interface PacketRun {
  readonly provider: 'github_actions' | 'self_hosted' | 'local';
  readonly repository?: string;
  readonly workflow?: string;
  readonly runId?: string;
  readonly runAttempt?: string;
  readonly ref?: string;
  readonly sha?: string;
  readonly agentIdentity: string;
  readonly startedAt: string;
  readonly completedAt: string;
  readonly agentExitCode: number;
}

/** The engine, and writer of the packet, this code is (the built-in one, this version). */
export const THIS_ENGINE = `pipelock-egress ${packageJson.version}`;

export interface PacketPosture {
  /** The engine that enforced the run and wrote the packet, with its version. */
  readonly engine: string;
  readonly runnerOs: string;
  readonly runnerArch?: string;
  readonly networkNamespace: string;
  readonly agentUser: string;
  readonly agentUid: number;
  readonly hostUser: string;
  readonly hostUid: number;
  readonly proxyUrl: string;
  readonly scriptBasename: string;
  readonly scriptArgCount: number;
}

export interface PacketInput {
  readonly generatedAt: string;
  readonly run: PacketRun;
  readonly summary: ChainSummary;
  readonly report: VerificationReport;
  /** The pinned key (Pipelock text form); absent when nothing was pinned. */
  readonly pinnedKey?: string;
  readonly posture: PacketPosture;
  /** Its hash is not needed: packet.json lists the hashes the receipts carry. */
  readonly policy: Omit<PacketPolicy, 'hash'>;
}

/** What the packet states about the policy the run enforced. */
export interface PacketPolicy {
  readonly path: string;
  readonly mode: string;
  readonly dlpPatterns: number;
  /** WebSocket enabled with frame_scan: client messages are scanned where the engine sees them. */
  readonly websocketFrameScan: boolean;
  readonly hash: string;
}

/** Paths this boundary does not cover, stated in every packet. */
export const UNSUPPORTED_PATHS = [
  'mcp_transports',
  'nested_docker',
  'non_proxy_browser_egress',
  'service_containers',
  'sibling_steps',
  'ssh_egress',
];

/** The run environment as GitHub describes it, or a local run. */
export function packetRunFromEnv(
  env: NodeJS.ProcessEnv,
): Omit<PacketRun, 'agentIdentity' | 'startedAt' | 'completedAt' | 'agentExitCode'> {
  // As the reference reads it: `true` in any case.
  const onActions = env['GITHUB_ACTIONS']?.toLowerCase() === 'true';
  const given = (name: string): string | undefined =>
    env[name] === undefined || env[name] === '' ? undefined : env[name];
  const fields = {
    repository: given('GITHUB_REPOSITORY'),
    workflow: given('GITHUB_WORKFLOW'),
    runId: given('GITHUB_RUN_ID'),
    runAttempt: given('GITHUB_RUN_ATTEMPT'),
    ref: given('GITHUB_REF'),
    sha: given('GITHUB_SHA'),
  };
  return {
    provider: !onActions
      ? 'local'
      : env['RUNNER_ENVIRONMENT'] === 'self-hosted'
        ? 'self_hosted'
        : 'github_actions',
    ...withoutUndefined(fields),
  };
}

/** An RFC 3339 UTC time to the second, as the reference action writes the packet's times. */
function toTheSecond(time: string): string {
  return time.replace(/\.[0-9]+Z$/, 'Z');
}

/** The reference names the key only where it decided the verdict: valid, or invalid (forensic). */
const VERDICTS_NAMING_THE_KEY = new Set(['valid', 'invalid']);

export function packetJson(input: PacketInput): Record<string, unknown> {
  const { run, summary, report, posture } = input;
  const trusted = report.verdict === 'valid';
  return {
    schema_version: 'pipelock.audit_packet.v0',
    generated_at: toTheSecond(input.generatedAt),
    run: withoutUndefined({
      provider: run.provider,
      repository: run.repository,
      workflow: run.workflow,
      run_id: run.runId,
      run_attempt: run.runAttempt,
      ref: run.ref,
      sha: run.sha,
      agent_identity: run.agentIdentity,
      started_at: toTheSecond(run.startedAt),
      completed_at: toTheSecond(run.completedAt),
      agent_exit_code: run.agentExitCode,
    }),
    policy: { policy_hashes: summary.policyHashes, config_path: input.policy.path },
    summary: {
      receipt_count: summary.receiptCount,
      totals: summary.totals,
      transports: summary.transports,
      layers: summary.layers,
      domains_touched: summary.domains,
    },
    verifier: withoutUndefined({
      verdict: report.verdict,
      trusted,
      receipt_count: report.receipt_count,
      root_hash: report.root_hash ?? undefined,
      final_seq: report.final_seq === null ? undefined : Number(report.final_seq),
      signer_key: VERDICTS_NAMING_THE_KEY.has(report.verdict) ? input.pinnedKey : undefined,
      output_file: PACKET_FILES.verifier,
      error: report.error ?? undefined,
    }),
    scanner_config_snapshot: {
      mode: input.policy.mode,
      dlp_patterns_count: input.policy.dlpPatterns,
      response_patterns_count: 0,
      ssrf_enabled: true,
      redaction_enabled: true,
      flight_recorder_enabled: true,
    },
    posture: withoutUndefined({
      enforcement_mode: 'linux_netns_iptables_setpriv',
      engine: posture.engine,
      runner_os: posture.runnerOs,
      runner_arch: posture.runnerArch,
      raw_socket_status: 'denied',
      docker_socket_status: 'masked',
      dns_udp_status: 'denied',
      browser_proxy_status: 'forced',
      // Messages are scanned on /ws?url= and inside intercepted TLS; a wss:// connection
      // through a tunnel the engine does not intercept is not.
      websocket_frame_scanning: input.policy.websocketFrameScan
        ? 'explicit_ws_proxy_path_required'
        : 'off',
      network_namespace: posture.networkNamespace,
      agent_user: posture.agentUser,
      agent_uid: posture.agentUid,
      host_user: posture.hostUser,
      host_uid: posture.hostUid,
      proxy_url: posture.proxyUrl,
      script_basename: posture.scriptBasename,
      script_arg_count: posture.scriptArgCount,
      unsupported_paths: UNSUPPORTED_PATHS,
    }),
    artifacts: { ...PACKET_FILES },
  };
}

/** The object without its undefined fields (absent from the JSON, not null). */
export function withoutUndefined<T extends object>(
  object: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** JSON with every object's keys sorted, indented by two spaces, as the original action writes it. */
export function encodeSorted(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((key) => [key, sort((v as Record<string, unknown>)[key])]),
      );
    }
    return v;
  };
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}
