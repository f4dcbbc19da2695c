// `policy check` and `policy explain`.

import {
  formatPolicyError,
  parsePolicy,
  plainHttpOnly,
  rulePorts,
  secretsKeptFrom,
  type Decision,
  type EgressRule,
  type Policy,
} from '../policy/index.js';
import { type CliIo, HelpRequested, isHelpOption, UsageError } from './io.js';
import { readPolicyFile } from './policy-file.js';
import { explainRequest, type Explanation } from './explain-request.js';
import { engineSecretValues } from './bound-secrets.js';
import { policyDetectors } from '../engine/dlp/detectors.js';
import { boundSecrets, createSecretScanner } from '../engine/dlp/secret-scan.js';

export async function policyCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  const option = rest.find((arg) => arg.startsWith('-'));
  if (isHelpOption(option)) throw new HelpRequested();
  if (option !== undefined)
    throw new UsageError(
      `policy ${subcommand ?? ''}: unknown option "${option}" (a file whose name starts with "-" is written ./${option})`,
    );
  if (subcommand === 'check' && rest.length === 1) return check(rest[0] ?? '', io);
  if (subcommand === 'explain' && rest.length === 3) {
    const [file = '', method = '', target = ''] = rest;
    return explain(file, method, target, io);
  }
  throw new UsageError(
    subcommand === 'check' || subcommand === 'explain'
      ? `policy ${subcommand}: wrong number of arguments`
      : `policy: unknown subcommand "${subcommand ?? ''}"; expected check or explain`,
  );
}

async function load(file: string, io: CliIo): Promise<Policy | number> {
  let bytes: Uint8Array;
  try {
    bytes = await readPolicyFile(file);
  } catch (error) {
    io.err(
      `pipelock-egress: cannot read policy ${file}: ${(error as Error).message}; give the path of a readable policy YAML file\n`,
    );
    return 2;
  }
  const result = parsePolicy(bytes, file);
  if (result.ok) return result.policy;
  for (const error of result.errors) io.err(`${formatPolicyError(error)}\n`);
  io.err(
    `${result.total} error${result.total === 1 ? '' : 's'} in ${file}; nothing runs on an invalid policy\n`,
  );
  return 1;
}

async function check(file: string, io: CliIo): Promise<number> {
  const policy = await load(file, io);
  if (typeof policy === 'number') return policy;
  io.out(summarise(policy));
  return 0;
}

const EXPLAIN = 'pipelock-egress policy explain';

/** The proxy's judgement of one request, with the URL scanned as it scans it (bound secrets as set here). */
async function explain(file: string, method: string, target: string, io: CliIo): Promise<number> {
  if (!/^[A-Za-z]+$/.test(method))
    throw new UsageError(`policy explain: "${method}" is not an HTTP method`);
  // Methods are case-sensitive: the proxy refuses a request sent as "get".
  if (method !== method.toUpperCase())
    throw new UsageError(
      `policy explain: methods are case-sensitive and sent in upper case; did you mean "${method.toUpperCase()}"?`,
    );
  const policy = await load(file, io);
  if (typeof policy === 'number') return 2;
  const secretValues = engineSecretValues(policy, process.env, io, EXPLAIN);
  if (secretValues === undefined) {
    io.err(`${EXPLAIN}: the proxy would not start with this environment: no request passes\n`);
    return 1;
  }
  const scanner = createSecretScanner(policyDetectors(policy), boundSecrets(policy, secretValues));
  const explanation = explainRequest(policy, scanner, method, target);
  const { decision } = explanation;
  const kept = decision.target === undefined ? [] : secretsKeptFrom(policy, decision.target);
  const framesScanned = /^wss?:\/\//i.test(target) && policy.websocket.frame_scan;
  io.out(describeExplanation(explanation, kept, framesScanned));
  return explanation.refusal !== undefined || decision.verdict === 'block' ? 1 : 0;
}

function describeExplanation(
  { decision, refusal, ssrf, tunnel }: Explanation,
  keptSecrets: readonly string[],
  framesScanned: boolean,
): string {
  if (refusal !== undefined)
    return `block\n  layer:  ${refusal.layer}\n  reason: ${refusal.reason}\n`;
  const lines: string[] = [decision.verdict];
  if (decision.layer) lines.push(`  layer:  ${decision.layer}`);
  lines.push(`  reason: ${decision.reason}`);
  if (decision.rule)
    lines.push(
      `  rule:   egress[${decision.rule.index}] ${decision.rule.destination.canonical} (line ${decision.rule.line})`,
    );
  if (decision.verdict === 'warn')
    lines.push('  mode:   audit (the request passes; enforce mode would block it)');
  if (decision.verdict !== 'block') {
    const guarded = keptSecrets.length > 0 && !decision.passthrough;
    const unseen = keptSecrets.length > 0 && decision.passthrough;
    const bound = `${keptSecrets.join(', ')} (bound secrets that may not go here), when set`;
    // A tunnel nobody intercepts shows the engine its host name and nothing else.
    const blind = decision.target?.kind === 'authority' && !decision.intercept && !guarded;
    const scan = blind
      ? 'the host name only (the tunnel is not intercepted)'
      : framesScanned
        ? 'the handshake headers and every message the client sends are scanned for secrets (websocket.frame_scan)'
        : decision.scan
          ? 'headers and body are scanned for secrets'
          : guarded
            ? `headers and body are scanned for ${bound}`
            : 'URL only';
    lines.push(`  scan:   ${scan}`);
    if (tunnel === 'intercepted')
      lines.push('  tls:    intercepted: the request is judged inside its CONNECT tunnel');
    if (decision.target?.kind === 'authority') {
      const tls = decision.intercept
        ? interceptedBecause(decision)
        : guarded
          ? `intercepted to keep out ${bound}`
          : unseen
            ? `tunnelled untouched (SNI checked, tls: passthrough): ${keptSecrets.join(', ')}, bound to other destinations, could reach it unseen inside TLS`
            : 'tunnelled untouched (SNI checked)';
      lines.push(`  tls:    ${tls}`);
    }
  }
  if (tunnel === 'unseen')
    lines.push(
      '  inside: the request goes inside this tunnel unseen: its method, path, query, headers and body are not judged (methods, paths or scan: true on its rule would have it intercepted)',
    );
  if (ssrf !== undefined) lines.push(`  ssrf:   ${ssrf}`);
  return `${lines.join('\n')}\n`;
}

/** Why the policy has a tunnel intercepted. */
function interceptedBecause(decision: Decision): string {
  if (decision.verdict === 'warn')
    return 'intercepted (what passes only in audit mode is scanned inside TLS)';
  if (decision.rule !== undefined && plainHttpOnly(decision.rule))
    return 'intercepted: only http:// URL prefixes admit it, so the plain HTTP it carries is judged request by request and every request over TLS is refused';
  return 'intercepted (a rule needs to see requests inside TLS)';
}

function summarise(policy: Policy): string {
  const lines = [
    `policy OK: ${policy.file}`,
    `  hash        ${policy.hash}`,
    `  mode        ${policy.mode}${policy.mode === 'audit' ? ' (what the rules refuse passes, recorded as warn; secrets and the SSRF floor still block)' : ''}`,
    `  default     ${policy.default_deny ? 'deny (only the rules below are allowed)' : 'allow (unlisted destinations pass, recorded; their URLs scanned where the engine sees them)'}`,
    `  dns         ${policy.dns_resolution}`,
    `  egress      ${policy.egress.length} rule${policy.egress.length === 1 ? '' : 's'}`,
    ...policy.egress.map(describeRule),
    `  websocket   ${policy.websocket.enabled ? `enabled at ${policy.websocket.proxy_path}, frame scan ${policy.websocket.frame_scan ? 'on' : 'off'}` : 'disabled'}`,
    `  secrets     ${policy.secrets.length === 0 ? 'none bound' : policy.secrets.map((s) => `${s.env} -> ${s.allow.map((d) => d.canonical).join(', ') || 'nowhere'}`).join('; ')}`,
    `  dlp         built-in detectors ${policy.dlp.builtin ? 'on' : 'off'}, ${policy.dlp.patterns.length} extra pattern${policy.dlp.patterns.length === 1 ? '' : 's'}`,
  ];
  return `${lines.join('\n')}\n`;
}

function describeRule(rule: EgressRule): string {
  const parts = [
    `    [${rule.index}] ${rule.destination.canonical}`,
    `ports ${rulePorts(rule).join(',')}`,
    rule.methods ? `methods ${rule.methods.join(',')}` : 'any method',
  ];
  if (rule.paths) parts.push(`paths ${rule.paths.join(',')}`);
  if (rule.scan) parts.push('scan');
  if (rule.tls) parts.push(`tls ${rule.tls}`);
  return parts.join('  ');
}
