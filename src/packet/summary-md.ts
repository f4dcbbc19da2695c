// summary.md and the job summary: the verdict first, then what the agent reached and what it
// was refused, the boundary's posture and limits, and how to check it all offline. Narrow
// tables, no secret values (receipts carry targets with secrets already cut out). Pure.
import type { VerificationReport } from '../cli/verification-report.js';
import {
  destinationsToList,
  type BlockedRequest,
  type ChainSummary,
  type DestinationCounts,
} from './summarize.js';
import { showInvisible } from '../invisible.js';
import { shortened } from '../shorten.js';
import { suggestedRules } from './audit-rules.js';
import type { EngineLogFacts } from './engine-log.js';
import { PACKET_FILES, POLICY_HASH_FILE } from './packet-json.js';

export interface SummaryInput {
  readonly report: VerificationReport;
  readonly summary: ChainSummary;
  readonly agentExitCode: number;
  readonly agentIdentity: string;
  readonly policyMode: string;
  readonly policyHash: string;
  readonly unsupported: readonly string[];
  /** What the engine's log says the evidence cannot (refusals without a receipt, a cut log). */
  readonly engineLog?: EngineLogFacts;
}

const VERDICT_LINES: Record<string, string> = {
  valid: '✅ **valid**: the chain verifies and is signed by the pinned key',
  self_consistent_only:
    '⚠️ **self-consistent only**: the chain verifies, but no public key was pinned, so anyone could have signed it. Pin one with the `public-key` input (and `signing-key`) to make the verdict valid.',
  invalid: '❌ **invalid**: the evidence does not verify',
  error: '❌ **error**: there is no evidence to verify',
};

/**
 * Inline code whatever the text holds: the fence is longer than any run of backticks in it
 * (padded, so a backtick at an edge is content), and nothing inside a code span is markup.
 * Long texts are cut: a summary larger than the runner accepts is not shown at all.
 */
function code(text: string): string {
  // A lone CR ends a line for Markdown too: escaped, with every other invisible character.
  const flat = showInvisible(text.replace(/\r?\n/g, ' '));
  const cut = shortened(flat, MAX_CODE_CHARS);
  // An empty code span cannot be written: its two backticks would open one instead.
  if (cut === '') return '—';
  const longestRun = Math.max(0, ...(cut.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  const pad = longestRun > 0 ? ' ' : '';
  return `${fence}${pad}${cut}${pad}${fence}`;
}

/** A method or a layer as it is when it is a plain word (as every run writes them), else code. */
function word(text: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(text) ? text : code(text);
}

/** Markdown for a table cell, where a `|` ends the cell even inside code unless escaped. */
function inCell(markdown: string): string {
  return markdown.replace(/\|/g, '\\|');
}

function cellCode(text: string): string {
  return inCell(code(text));
}

const MAX_CODE_CHARS = 500;
const PINNED_KEY = '<your pinned public key>';
/**
 * Refusals and destinations listed one by one; the rest are counted (receipts.json holds them
 * all): a summary over the runner's 1 MiB is not shown at all.
 */
const MAX_REFUSALS_LISTED = 200;
const MAX_DESTINATIONS_LISTED = 200;

function moreDestinations(all: readonly DestinationCounts[], listed: number): string {
  return `… and ${all.length - listed} more destinations, each in \`receipts.json\``;
}

function byteSize(bytes: number): string {
  const mib = 1024 * 1024;
  return bytes % mib === 0 ? `${bytes / mib} MiB` : `${bytes} bytes`;
}

export function summaryMarkdown(input: SummaryInput): string {
  const { report, summary } = input;
  const lines: string[] = ['# Agent egress: Audit Packet', ''];
  lines.push(VERDICT_LINES[report.verdict] ?? report.verdict);
  if (report.error !== null) lines.push('', `Verifier: ${code(report.error)}`);
  lines.push(
    '',
    `- Agent ${code(input.agentIdentity)} exited with ${input.agentExitCode}`,
    `- ${summary.receiptCount} receipts: ${summary.totals.allow} allow, ${summary.totals.block} block, ${summary.totals.warn} warn${summary.totals.other > 0 ? `, ${summary.totals.other} other` : ''} (session open and close included)`,
    `- Policy ${code(input.policyHash.slice(0, 16))}… in ${input.policyMode} mode; sealed: ${report.sealed ? 'yes' : 'no'}`,
  );
  const { unrecorded, cut } = input.engineLog ?? {};
  if (unrecorded)
    lines.push(
      `- ⚠️ ${unrecorded.count} requests were refused without a receipt, none of them forwarded: ${code(unrecorded.reason)} (counted in \`engine.log\`)`,
    );
  if (cut) {
    const after =
      cut.droppedLines === undefined
        ? 'the engine did not end normally, so what followed was not counted'
        : `${cut.droppedLines} later lines were counted, not kept`;
    lines.push(`- ⚠️ \`engine.log\` stopped at its limit of ${byteSize(cut.maxBytes)}; ${after}`);
  }
  lines.push('', '## Destinations', '');
  if (summary.destinations.length === 0) lines.push('The agent made no requests.');
  else {
    lines.push('| destination | allowed | blocked | methods |', '|---|---:|---:|---|');
    const listed = destinationsToList(summary.destinations, MAX_DESTINATIONS_LISTED);
    for (const d of listed) {
      const blocked = d.blocked + d.warned;
      const methods = [...d.methods].sort().map((method) => inCell(word(method)));
      lines.push(
        `| ${cellCode(d.destination)} | ${d.allowed} | ${blocked}${d.warned > 0 ? ' (audit)' : ''} | ${methods.join(' ')} |`,
      );
    }
    if (listed.length < summary.destinations.length)
      lines.push('', moreDestinations(summary.destinations, listed.length));
  }
  if (input.policyMode === 'audit') {
    // Audit mode lets what the rules refuse pass (warn); secrets and the SSRF floor it blocks.
    const blocked = summary.refused.filter((r) => r.verdict !== 'warn');
    if (blocked.length > 0) {
      lines.push('', '## Blocked', '', 'Blocked in audit mode too:', '');
      lines.push(...refusalLines(blocked));
    }
    lines.push('', '## Would have been blocked', '');
    lines.push(...refusalLines(summary.refused.filter((r) => r.verdict === 'warn')));
  } else {
    lines.push('', '## Blocked', '', ...refusalLines(summary.refused));
  }
  if (input.policyMode === 'audit' && summary.refused.length > 0) {
    lines.push(
      '',
      '### Rules that would have allowed this run',
      '',
      'Every destination the agent reached or would have been refused, with the methods its requests were judged as, the ones it should not reach too: review each before adopting it. Left out: what audit mode blocked all the same, tunnels the engine cut (SNI, ECH, TLS interception, mid-relay), and methods asked for only by an override (the `X-HTTP-Method-Override`, `X-HTTP-Method` and `X-Method-Override` headers, `_method` in the query or body). A tunnel relayed unseen, or whose end the evidence does not record, gets a rule without methods. Rules only, by host and port, for any scheme, without your `paths`, `scan`, `tls`, `secrets` and `dlp` settings: merge them into your policy. One for the same host and ports as a rule of yours is refused as a duplicate (merge its methods into yours); one for the same host on some of its ports is accepted, and allows there without your settings. A name that resolves to a private or loopback address passes only with the rule your policy has for that address.',
      '',
      '```yaml',
      ...suggestedRules(summary.passed, MAX_DESTINATIONS_LISTED),
      '```',
    );
  }
  lines.push(
    '',
    '## Boundary',
    '',
    '- The agent ran as `pipelock-agent` in its own network, mount and PID namespaces: only `lo`, no capabilities, `no_new_privs`; IPv4 and IPv6 dropped except loopback.',
    '- Every HTTP and HTTPS request went through the engine, which signed a receipt before forwarding; DNS is resolved by the engine only; container and name-service sockets were masked.',
    `- Not covered: ${input.unsupported.map(code).join(', ')}.`,
    '',
    '## Verify offline',
    '',
    'From this packet directory, with the public key you pinned: the chain, and every other file of the packet against it:',
    '',
    '```sh',
    `pipelock-egress verify --packet . --public-key ${PINNED_KEY}`,
    '```',
    '',
    "The chain alone, as Pipelock's own verifiers check it:",
    '',
    '```sh',
    `pipelock-egress verify --receipt-chain ${PACKET_FILES.evidence} --policy-hash ${POLICY_HASH_FILE} --public-key ${PINNED_KEY} --require-sealed --whole-recorder`,
    '```',
    '',
    'Or browse it, verified and checked the same way:',
    '',
    '```sh',
    `pipelock-egress view . --public-key ${PINNED_KEY}`,
    '```',
    '',
  );
  return lines.join('\n');
}

function refusalLines(refused: readonly BlockedRequest[]): string[] {
  if (refused.length === 0) return ['Nothing.'];
  const lines = refused
    .slice(0, MAX_REFUSALS_LISTED)
    .map(
      (r) =>
        `- seq ${r.seq}: ${word(r.method)} ${code(r.target)}: ${word(r.layer)}${r.reason === '' ? '' : `: ${code(r.reason)}`}`,
    );
  if (refused.length > MAX_REFUSALS_LISTED)
    lines.push(`- … and ${refused.length - MAX_REFUSALS_LISTED} more, each in \`receipts.json\``);
  return lines;
}
