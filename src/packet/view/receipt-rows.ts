// The receipts as the viewer lists them: one compact row per verified receipt, and the
// filtering and paging of the receipts page. Pure.
import type { Receipt } from '../../receipts/index.js';
import { destinationOf, isRequest } from '../summarize.js';

export interface ReceiptRow {
  readonly seq: bigint;
  readonly timestamp: string;
  readonly verdict: string;
  readonly transport: string;
  readonly method: string;
  readonly target: string;
  /** host[:port] for requests, '' for session control and outcomes. */
  readonly destination: string;
  readonly layer: string;
  readonly reason: string;
  /** `session_open`, `session_close`, …; '' for a request or an outcome. */
  readonly session: string;
  readonly outcome: boolean;
  /** The receipt exactly as signed and hashed (its canonical encoding), as UTF-8. */
  readonly encoded: Uint8Array;
  readonly hash: string;
  readonly prevHash: string;
}

/**
 * A copy that does not share memory with the text it was cut from: a row would otherwise keep
 * its receipt's whole line of evidence alive.
 */
function detached(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

export function receiptRow(receipt: Receipt, encoded: string, hash: string): ReceiptRow {
  const record = receipt.action_record;
  return {
    seq: record.chain_seq,
    timestamp: detached(record.timestamp),
    verdict: detached(record.verdict),
    transport: detached(record.transport),
    method: detached(record.method ?? ''),
    target: detached(record.target),
    destination: isRequest(record) ? detached(destinationOf(record.target)) : '',
    layer: detached(record.layer ?? ''),
    reason: detached(record.pattern ?? ''),
    session: detached(record.session_control?.kind ?? ''),
    outcome: record.decision_phase === 'outcome',
    encoded: Buffer.from(encoded, 'utf8'),
    hash,
    prevHash: detached(record.chain_prev_hash),
  };
}

export const PAGE_SIZE = 100;

/** What the receipts page shows, read from its query string. */
export interface RowQuery {
  /** A verdict (allow, block, warn, …), or '' for all. */
  readonly verdict: string;
  /** host[:port] exactly, or '' for all. */
  readonly destination: string;
  /** Case-insensitive text in the target, method, layer or reason; '' for all. */
  readonly text: string;
  /** 1-based. */
  readonly page: number;
}

export function rowQuery(params: URLSearchParams): RowQuery {
  const page = Number(params.get('page') ?? '1');
  return {
    verdict: params.get('verdict') ?? '',
    destination: params.get('destination') ?? '',
    text: params.get('q') ?? '',
    page: Number.isSafeInteger(page) && page >= 1 ? page : 1,
  };
}

export function queryString(query: RowQuery, page = query.page): string {
  const params = new URLSearchParams();
  if (query.verdict !== '') params.set('verdict', query.verdict);
  if (query.destination !== '') params.set('destination', query.destination);
  if (query.text !== '') params.set('q', query.text);
  if (page > 1) params.set('page', String(page));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

export interface RowPage {
  readonly rows: readonly ReceiptRow[];
  /** Rows matching the query, over all pages. */
  readonly matching: number;
  readonly page: number;
  readonly pages: number;
}

export function selectRows(rows: readonly ReceiptRow[], query: RowQuery): RowPage {
  const needle = query.text.toLowerCase();
  const matching = rows.filter(
    (row) =>
      (query.verdict === '' || row.verdict === query.verdict) &&
      (query.destination === '' || row.destination === query.destination) &&
      (needle === '' ||
        [row.target, row.method, row.layer, row.reason].some((field) =>
          field.toLowerCase().includes(needle),
        )),
  );
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  const page = Math.min(query.page, pages);
  return {
    rows: matching.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE),
    matching: matching.length,
    page,
    pages,
  };
}

/** Re-indents compact JSON for reading, leaving every token (numbers, escapes) as written. */
export function indentJson(compact: string): string {
  let out = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i] ?? '';
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    const next = compact[i + 1];
    if (c === '"') {
      inString = true;
      out += c;
    } else if ((c === '{' || c === '[') && next !== '}' && next !== ']') {
      depth++;
      out += `${c}\n${'  '.repeat(depth)}`;
    } else if ((c === '}' || c === ']') && compact[i - 1] !== '{' && compact[i - 1] !== '[') {
      depth--;
      out += `\n${'  '.repeat(depth)}${c}`;
    } else if (c === ',') {
      out += `,\n${'  '.repeat(depth)}`;
    } else if (c === ':') {
      out += ': ';
    } else {
      out += c;
    }
  }
  return out;
}
