// The viewer's pages, rendered from a verified packet: the overview (verdict, what was verified,
// the packet's files, totals, destinations, refusals), the receipts list, one receipt, the
// policy. Pure; every value from the packet goes through `html`, which escapes it.
import { destinationsToList, VERDICT_TOTALS } from '../summarize.js';
import { html, type Html, type HtmlValue } from './html.js';
import type { PacketView } from './load-packet.js';
import type { CheckStatus } from '../check/file-check.js';
import {
  indentJson,
  queryString,
  selectRows,
  type ReceiptRow,
  type RowQuery,
} from './receipt-rows.js';

/** Links are relative to the viewer's root (which carries the access token). */
export interface PageContext {
  readonly root: string;
}

/** The overview lists this many refused requests and destinations; the receipts pages all. */
export const OVERVIEW_REFUSALS = 100;
export const OVERVIEW_DESTINATIONS = 200;

const VERDICT_NAMES: Readonly<Record<string, string>> = {
  valid: 'VALID',
  self_consistent_only: 'SELF-CONSISTENT ONLY',
  invalid: 'INVALID',
  error: 'NO EVIDENCE',
};

function layout(view: PacketView, ctx: PageContext, title: string, body: HtmlValue): Html {
  const { verdict } = view.verdict;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Audit Packet</title>
<link rel="stylesheet" href="${ctx.root}style.css">
</head>
<body>
<header>
<nav><a href="${ctx.root}">Overview</a> <a href="${ctx.root}receipts">Receipts</a> <a href="${ctx.root}policy">Policy</a></nav>
<p class="packet">Audit Packet ${view.dir} · <span class="verdict ${verdict}">${VERDICT_NAMES[verdict] ?? verdict}</span></p>
</header>
<main>
${body}
</main>
</body>
</html>
`;
}

function verdictBanner(view: PacketView): Html {
  const { report, judgement, verdict } = view;
  const signer = report.signer_keys.join(', ');
  switch (verdict.verdict) {
    case 'valid':
      return html`<section class="banner valid"><h1>VALID</h1>
<p>The receipt chain verifies end to end (signatures, hash links, recorder entries, checkpoints, transcript root), is sealed by a signed session close, and is signed by a key you pinned: <code>${signer}</code>.</p></section>`;
    case 'self_consistent_only':
      return html`<section class="banner self_consistent_only"><h1>SELF-CONSISTENT ONLY</h1>
<p>The receipt chain verifies end to end and is sealed, but no key was pinned: it is signed by <code>${signer}</code>, a key the packet names itself. Anyone could make a packet that agrees with itself. Pin the key you expect: <code>pipelock-egress view DIR --public-key KEY</code>.</p></section>`;
    case 'invalid':
      return html`<section class="banner invalid"><h1>INVALID</h1>
<p>${verdict.error ?? 'the chain does not verify'}</p>
${
  judgement.verdict !== 'invalid'
    ? html`<p>The receipts themselves verify (${VERDICT_NAMES[judgement.verdict] ?? judgement.verdict}); the files named under Packet files say something they do not: rely only on the receipts.</p>`
    : report.broken_at_seq === undefined
      ? ''
      : html`<p>The chain breaks at seq ${report.broken_at_seq}. The receipts listed here are the ones accepted before the break; the evidence as a whole is not valid.</p>`
}</section>`;
    default:
      return html`<section class="banner error"><h1>NO EVIDENCE</h1><p>${verdict.error ?? 'no receipts found'}</p></section>`;
  }
}

/** Pages other than the overview repeat the banner unless the verdict is valid. */
function warningBanner(view: PacketView): HtmlValue {
  return view.verdict.verdict === 'valid' ? '' : verdictBanner(view);
}

/** How many keys were pinned, not which: a private key given by mistake reads as a public one. */
function pinnedKeysFact(count: number): string {
  if (count === 0) return 'none';
  return `${count} given (not shown: ${count === 1 ? 'it' : 'one'} may be a secret key)`;
}

function factsTable(view: PacketView): Html {
  const { report } = view;
  const facts: [string, HtmlValue][] = [
    ['Receipts', report.receipt_count],
    ['Final seq', report.final_seq],
    ['Root hash', html`<code>${report.root_hash}</code>`],
    ['Start', report.start_time],
    ['End', report.end_time],
    ['Signer keys', html`<code>${report.signer_keys.join(', ')}</code>`],
    ['Pinned keys', pinnedKeysFact(view.pinnedKeys.length)],
    ['Sealed', report.sealed ? 'yes' : 'no'],
    ['Policy hashes', html`<code>${report.policy_hashes.join(', ')}</code>`],
  ];
  if (report.torn_tail) {
    facts.push([
      'Torn tail',
      `${report.torn_tail.where} (${report.torn_tail.bytes} bytes of an unfinished line; not verified)`,
    ]);
  }
  return html`<table class="facts">${facts.map(([name, value]) => html`<tr><th>${name}</th><td>${value}</td></tr>`)}</table>`;
}

const STATUS_NAMES: Readonly<Record<CheckStatus, string>> = {
  ok: 'matches',
  mismatch: 'DOES NOT MATCH',
  missing: 'missing',
  unchecked: 'not checked',
};

function checksSection(view: PacketView): Html {
  const bad = view.checks.filter((c) => c.status === 'mismatch' || c.status === 'missing');
  return html`<section><h2>Packet files</h2>
${bad.length === 0 ? '' : html`<p class="warning">${bad.length} of the packet's files do not match the verified evidence: rely only on what is verified.</p>`}
<table><tr><th>File</th><th>Status</th><th>Detail</th></tr>
${view.checks.map((c) => html`<tr class="${c.status}"><td><code>${c.file}</code></td><td>${STATUS_NAMES[c.status]}</td><td>${c.detail}</td></tr>`)}
</table></section>`;
}

function receiptsLink(ctx: PageContext, query: Partial<RowQuery>, label: HtmlValue): Html {
  const full: RowQuery = { verdict: '', destination: '', text: '', page: 1, ...query };
  return html`<a href="${ctx.root}receipts${queryString(full)}">${label}</a>`;
}

function seqLink(ctx: PageContext, seq: bigint, label: HtmlValue = seq): Html {
  return html`<a href="${ctx.root}receipts/${seq}">${label}</a>`;
}

function totalsSection(view: PacketView, ctx: PageContext): Html {
  const { totals } = view.summary;
  const shown = VERDICT_TOTALS.filter((v) => totals[v] > 0);
  return html`<section><h2>Decisions</h2>
<p>Counted from the verified receipts (${view.summary.receiptCount}, including session control and tunnel outcomes).</p>
<table><tr>${shown.map((v) => html`<th>${v}</th>`)}</tr>
<tr>${shown.map((v) => html`<td>${v === 'other' ? totals[v] : receiptsLink(ctx, { verdict: v }, totals[v])}</td>`)}</tr></table></section>`;
}

function destinationsSection(view: PacketView, ctx: PageContext): Html {
  const all = view.summary.destinations;
  if (all.length === 0) return html`<section><h2>Destinations</h2><p>No requests.</p></section>`;
  const rows = destinationsToList(all, OVERVIEW_DESTINATIONS);
  const more =
    rows.length === all.length
      ? ''
      : html`<p>${rows.length} of ${all.length}: those reached first, then those refused; ${receiptsLink(ctx, {}, 'every receipt')} names the rest.</p>`;
  return html`<section><h2>Destinations</h2>
${more}
<table><tr><th>Destination</th><th>Allowed</th><th>Blocked</th><th>Warned</th><th>Methods</th></tr>
${rows.map((d) => html`<tr><td>${receiptsLink(ctx, { destination: d.destination }, d.destination)}</td><td>${d.allowed}</td><td>${d.blocked}</td><td>${d.warned}</td><td>${[...d.methods].sort().join(', ')}</td></tr>`)}
</table></section>`;
}

function refusedSection(view: PacketView, ctx: PageContext): Html {
  const refused = view.summary.refused;
  if (refused.length === 0) return html`<section><h2>Blocked requests</h2><p>None.</p></section>`;
  const verdicts = [...new Set(refused.map((r) => r.verdict))].sort();
  const more =
    refused.length <= OVERVIEW_REFUSALS
      ? ''
      : html`<p>The first ${OVERVIEW_REFUSALS} of ${refused.length}; all of them: ${verdicts.map((v, i) => [i > 0 ? ', ' : '', receiptsLink(ctx, { verdict: v }, `verdict ${v}`)])}.</p>`;
  return html`<section><h2>Blocked requests</h2>
${more}
<table><tr><th>Seq</th><th>Verdict</th><th>Method</th><th>Target</th><th>Layer</th><th>Reason</th></tr>
${refused.slice(0, OVERVIEW_REFUSALS).map((r) => html`<tr><td>${seqLink(ctx, r.seq)}</td><td>${r.verdict}</td><td>${r.method}</td><td class="target">${r.target}</td><td>${r.layer}</td><td>${r.reason}</td></tr>`)}
</table></section>`;
}

export function overviewPage(view: PacketView, ctx: PageContext): Html {
  return layout(view, ctx, 'Overview', [
    verdictBanner(view),
    html`<section><h2>What was verified</h2>${factsTable(view)}</section>`,
    checksSection(view),
    totalsSection(view, ctx),
    destinationsSection(view, ctx),
    refusedSection(view, ctx),
  ]);
}

function rowKind(row: ReceiptRow): string {
  if (row.session !== '') return row.session;
  return row.outcome ? 'outcome' : row.transport;
}

function pager(ctx: PageContext, query: RowQuery, page: number, pages: number): HtmlValue {
  if (pages <= 1) return '';
  const link = (to: number, label: string): Html =>
    html`<a href="${ctx.root}receipts${queryString(query, to)}">${label}</a>`;
  return html`<p class="pager">${page > 1 ? link(page - 1, '← previous') : ''} page ${page} of ${pages} ${page < pages ? link(page + 1, 'next →') : ''}</p>`;
}

export function receiptsPage(view: PacketView, ctx: PageContext, query: RowQuery): Html {
  const selected = selectRows(view.rows, query);
  const verdicts = [...new Set(view.rows.map((r) => r.verdict))].sort();
  const form = html`<form method="get" action="${ctx.root}receipts">
<label>Verdict <select name="verdict"><option value="">all</option>${verdicts.map((v) => html`<option${v === query.verdict ? html` selected` : ''}>${v}</option>`)}</select></label>
<label>Text <input name="q" value="${query.text}"></label>
${query.destination === '' ? '' : html`<input type="hidden" name="destination" value="${query.destination}">`}
<button>Filter</button></form>`;
  const scope = query.destination === '' ? '' : html` to <code>${query.destination}</code>`;
  return layout(view, ctx, 'Receipts', [
    warningBanner(view),
    html`<h2>Receipts</h2>`,
    form,
    html`<p>${selected.matching} of ${view.rows.length} receipts${scope}.</p>`,
    pager(ctx, query, selected.page, selected.pages),
    html`<table class="receipts"><tr><th>Seq</th><th>Time</th><th>Kind</th><th>Verdict</th><th>Method</th><th>Target</th><th>Layer</th><th>Reason</th></tr>
${selected.rows.map((r) => html`<tr class="${r.verdict}"><td>${seqLink(ctx, r.seq)}</td><td>${r.timestamp}</td><td>${rowKind(r)}</td><td>${r.verdict}</td><td>${r.method}</td><td class="target">${r.target}</td><td>${r.layer}</td><td>${r.reason}</td></tr>`)}
</table>`,
    pager(ctx, query, selected.page, selected.pages),
  ]);
}

export function receiptPage(view: PacketView, ctx: PageContext, row: ReceiptRow): Html {
  const index = view.rows.indexOf(row);
  const previous = view.rows[index - 1];
  const next = view.rows[index + 1];
  return layout(view, ctx, `Receipt ${row.seq}`, [
    warningBanner(view),
    html`<h2>Receipt seq ${row.seq}</h2>
<p>${previous ? seqLink(ctx, previous.seq, `← seq ${previous.seq}`) : ''} ${next ? seqLink(ctx, next.seq, `seq ${next.seq} →`) : ''}</p>
<table class="facts">
<tr><th>Verdict</th><td>${row.verdict}</td></tr>
<tr><th>Target</th><td class="target">${row.target}</td></tr>
<tr><th>Receipt hash</th><td><code>${row.hash}</code></td></tr>
<tr><th>Previous hash</th><td><code>${row.prevHash}</code></td></tr>
</table>
<p>The receipt as signed, indented for reading (its hash is over the compact form, one line of <code>receipts.json</code>):</p>
<pre>${indentJson(new TextDecoder().decode(row.encoded))}</pre>`,
  ]);
}

export function policyPage(view: PacketView, ctx: PageContext): Html {
  const check = view.checks.find((c) => c.file === 'policy.yaml');
  const body =
    view.policy.kind === 'read'
      ? html`<pre>${view.policy.value}</pre>`
      : html`<p>${view.policy.kind === 'missing' ? 'The packet holds no policy.yaml.' : view.policy.error}</p>`;
  return layout(view, ctx, 'Policy', [
    warningBanner(view),
    html`<h2>Policy</h2>`,
    check
      ? html`<p class="${check.status}"><code>policy.yaml</code>: ${STATUS_NAMES[check.status]}: ${check.detail}.</p>`
      : '',
    body,
  ]);
}

export function notFoundPage(view: PacketView, ctx: PageContext, what: string): Html {
  return layout(view, ctx, 'Not found', html`<h2>Not found</h2><p>${what}</p>`);
}

export const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1f23}
header{background:#24292e;color:#fff;padding:.6em 1.2em}
header a{color:#fff;margin-right:1.2em}
header p{margin:.3em 0 0}
main{padding:1em 1.2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
td.target{word-break:break-all;max-width:40em}
code,pre{font-family:ui-monospace,monospace}
pre{background:#f6f8fa;padding:1em;overflow:auto;white-space:pre-wrap;word-break:break-all}
.banner{padding:.6em 1em;border-radius:6px;margin-bottom:1em}
.banner h1{margin:0 0 .3em;font-size:1.4em}
.banner.valid{background:#dafbe1}
.banner.self_consistent_only{background:#fff8c5}
.banner.invalid,.banner.error{background:#ffebe9}
.verdict{font-weight:bold}
.warning,tr.mismatch,tr.missing,p.mismatch,p.missing{background:#ffebe9}
tr.block{background:#fff1f0}
tr.warn{background:#fffbe6}
form label{margin-right:1em}
`;
