// The viewer's HTTP surface, as a pure function of the request: an unguessable token in every
// path (other local users share loopback), the Host header pinned (a page on another site cannot
// reach the viewer by rebinding a name to 127.0.0.1), GET and HEAD only, no scripts allowed.
import { timingSafeEqual } from 'node:crypto';
import type { Html } from './html.js';
import type { PacketView } from './load-packet.js';
import {
  notFoundPage,
  overviewPage,
  policyPage,
  receiptPage,
  receiptsPage,
  STYLE,
  type PageContext,
} from './pages.js';
import { rowQuery, type ReceiptRow } from './receipt-rows.js';

export interface ViewerRequest {
  readonly method: string;
  /** The request target as sent (origin form). */
  readonly url: string;
  readonly host: string | undefined;
}

export interface ViewerResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

function plain(status: number, body: string, extra: Record<string, string> = {}): ViewerResponse {
  return {
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...extra },
    body: `${body}\n`,
  };
}

function page(status: number, body: Html): ViewerResponse {
  return {
    status,
    headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8' },
    body: body.text,
  };
}

export class ViewerApp {
  private readonly bySeq = new Map<string, ReceiptRow>();
  private readonly root: string;
  private readonly token: Buffer;

  constructor(
    private readonly view: PacketView,
    token: string,
    /** Host header values that name this server, e.g. `127.0.0.1:8123`. */
    private readonly hosts: readonly string[],
  ) {
    this.root = `/${token}/`;
    this.token = Buffer.from(token);
    for (const row of view.rows) this.bySeq.set(String(row.seq), row);
  }

  handle(request: ViewerRequest): ViewerResponse {
    try {
      return this.route(request);
    } catch (error) {
      // A signer can make values no page can hold (a string past V8's limit): the viewer
      // answers that page with the reason and goes on serving the others.
      return plain(
        500,
        `this page could not be made (${(error as Error).message}); the packet's files hold what it would show`,
      );
    }
  }

  private route(request: ViewerRequest): ViewerResponse {
    if (request.host === undefined || !this.hosts.includes(request.host.toLowerCase())) {
      return plain(421, `this viewer answers only to ${this.hosts.join(' or ')}`);
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return plain(405, 'the viewer only reads: GET or HEAD', { Allow: 'GET, HEAD' });
    }
    let url: URL;
    try {
      url = new URL(request.url, 'http://viewer.invalid');
    } catch {
      return plain(400, 'bad request target');
    }
    const [, first = '', ...rest] = url.pathname.split('/');
    // Without the token, nothing says a viewer is here; compared in constant time.
    const given = Buffer.from(first);
    if (given.length !== this.token.length || !timingSafeEqual(given, this.token)) {
      return plain(404, 'not found');
    }
    if (rest.length === 0) return plain(308, 'moved', { Location: this.root });
    const ctx: PageContext = { root: this.root };
    const path = rest.join('/');
    if (path === '') return page(200, overviewPage(this.view, ctx));
    if (path === 'style.css') {
      return {
        status: 200,
        headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/css; charset=utf-8' },
        body: STYLE,
      };
    }
    if (path === 'receipts')
      return page(200, receiptsPage(this.view, ctx, rowQuery(url.searchParams)));
    if (path === 'policy') return page(200, policyPage(this.view, ctx));
    const seq = /^receipts\/([0-9]{1,20})$/.exec(path)?.[1];
    const row = seq === undefined ? undefined : this.bySeq.get(String(BigInt(seq)));
    if (row) return page(200, receiptPage(this.view, ctx, row));
    const what =
      seq === undefined ? 'There is no such page.' : `No verified receipt has seq ${seq}.`;
    return page(404, notFoundPage(this.view, ctx, what));
  }
}
