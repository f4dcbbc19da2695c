// Header and body scanning for one request the policy allows: detectors where the destination
// has `scan`, bound secrets wherever one may not go. A scanned body is read whole first (and
// is what gets forwarded), within a per-request limit and a budget shared by all requests, so
// that many large uploads at once cannot exhaust the engine's memory.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { dlpRefusal, type Inspection } from './admission.js';
import { bodyMethodOverrides, overridableBody } from './body-method.js';
import type { ContentScans } from './dlp/content-scans.js';
import { decodeBody, headerViews } from './dlp/content-views.js';
import type { SecretScanner } from './dlp/secret-scan.js';
import { hasBody, joinedValue, requestHeaders } from './forward.js';
import type { EngineLimits } from './limits.js';
import { HELD_BODIES_FULL, readBody } from './read-body.js';
import type { Refusal } from './refusal.js';

/** Bytes of request bodies held for scanning, all requests together. */
export class ScanBudget {
  private held = 0;

  constructor(private readonly max: number) {}

  take(bytes: number): boolean {
    if (this.held + bytes > this.max) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

export class RequestInspection {
  /** The body as read and scanned; undefined when it streams through unread. */
  body: Buffer | undefined;
  /** The body was started and left unread: the connection cannot carry another request. */
  bodyLeftUnread = false;
  private held = 0;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly scanner: SecretScanner,
    private readonly contentScans: ContentScans,
    private readonly limits: EngineLimits,
    private readonly budget: ScanBudget,
    /** The request timeout, once its connection reached it (the body stops coming then). */
    private readonly timedOut: () => Refusal | undefined,
  ) {}

  readonly inspect: Inspection = async (decision, { reach, someMethodRefused }) => {
    const detectors = decision.scan;
    const scanned = detectors || this.scanner.guards(reach);
    const { req } = this;
    const forwarded = requestHeaders(req.rawHeaders);
    const contentType = joinedValue(forwarded, 'content-type');
    // A body that may name another method (`_method`) is read where some method is refused.
    const methodBody = overridableBody(req.method ?? '', contentType);
    const forMethod = methodBody.length > 0 && hasBody(req) && someMethodRefused();
    if (!scanned && !forMethod) return undefined;
    if (scanned) {
      const inHeaders = this.scanner.scanContent(headerViews(forwarded), reach, detectors);
      if (inHeaders) return { refusal: dlpRefusal(inHeaders) };
    }
    if (!hasBody(req)) return undefined;
    this.bodyLeftUnread = true;
    const limit = this.limits.maxScanBytes;
    const tooLarge: Refusal = scanned
      ? {
          status: 413,
          layer: 'dlp',
          reason: `the request body exceeds the scan limit of ${limit} bytes; a scanned destination cannot receive what cannot be scanned`,
        }
      : {
          status: 413,
          layer: 'method',
          reason: `the request body exceeds ${limit} bytes: a POST body that may name another method (_method) is read before it is sent where some method is refused, and this one cannot be`,
        };
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) return { refusal: tooLarge };
    continueIfAwaited(req, this.res);
    const read = await readBody(req, limit, tooLarge, (bytes) => this.hold(bytes));
    if (!read.ok) return { refusal: this.timedOut() ?? read.refusal };
    const encoding = joinedValue(forwarded, 'content-encoding');
    const decoded = decodeBody(read.body, encoding, limit);
    if (!decoded.ok) {
      const layer = scanned ? 'dlp' : 'method';
      return { refusal: { status: 403, layer, reason: decoded.reason } };
    }
    // What a compressed body decodes to is held with it until its scan is done (scans of
    // large bodies wait their turn for a thread): a few bytes of brotli are megabytes here.
    if (decoded.body !== read.body && !this.hold(decoded.body.length))
      return { refusal: HELD_BODIES_FULL };
    if (scanned) {
      const inBody = await this.contentScans.scanBody(read.body, decoded.body, reach, detectors);
      if (inBody) return { refusal: dlpRefusal(inBody) };
    }
    this.bodyLeftUnread = false;
    this.body = read.body;
    if (!forMethod) return { methodOverrides: [] };
    const readings = decoded.body === read.body ? [read.body] : [read.body, decoded.body];
    return bodyMethodOverrides(readings, methodBody, contentType);
  };

  /**
   * For a refused request whose body was left unread. A client that is sending it anyway (a
   * declared length within the body limit, no `Expect: 100-continue` waiting for our word)
   * has the rest read and dropped: closing with its bytes unread would reset the connection,
   * and the client could lose the refusal before reading it. Any other body cannot be
   * delimited or is not coming: the connection closes after the answer.
   */
  settleUnreadBody(): void {
    if (!this.bodyLeftUnread) return;
    const declared = this.req.headers['content-length'];
    const sending = declared !== undefined && !expectsContinue(this.req);
    if (sending && Number(declared) <= this.limits.maxBodyBytes) this.req.resume();
    else this.res.shouldKeepAlive = false;
  }

  private hold(bytes: number): boolean {
    if (!this.budget.take(bytes)) return false;
    this.held += bytes;
    return true;
  }

  /** Gives the body's bytes back to the shared budget once the request is done with them. */
  release(): void {
    this.budget.give(this.held);
    this.held = 0;
  }
}

export function expectsContinue(req: IncomingMessage): boolean {
  return /^100-continue$/i.test(req.headers.expect ?? '');
}

/**
 * Answers 100 Continue to a client waiting for it, when this answer is the connection's next:
 * one queued behind another answer (pipelining) has no connection yet, and a 100 written to it
 * would land inside the answer before it. A client that pipelines past its request has sent
 * that request's body already; one that waits sends it after its own timeout (RFC 9110 10.1.1).
 */
export function continueIfAwaited(req: IncomingMessage, res: ServerResponse): void {
  if (expectsContinue(req) && res.socket !== null) res.writeContinue();
}
