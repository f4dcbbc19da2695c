// The decision pipeline every request goes through before a byte leaves: URL DLP (before
// anything is resolved, so a secret in a host name never reaches a resolver), policy
// (destination, port, path, method), TLS visibility, SSRF guard on the resolved addresses,
// then the write-ahead receipt. A request is forwarded only if this returns `admitted`.

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import {
  decide,
  decideWebSocket,
  formatHost,
  METHODS,
  type Decision,
  type Policy,
  type RequestTarget,
} from '../policy/index.js';
import type { IpAddress } from '../policy/ip.js';
import { spellingProblem } from '../policy/target.js';
import type { DecisionEntry, DecisionLog, Transport } from './decision-log.js';
import type { Refusal } from './refusal.js';
import type { Resolver } from './resolver.js';
import { checkResolvedAddresses, type AddressCheck } from './ssrf.js';
import { formMethods } from './body-method.js';
import type { DlpFinding, SecretScanner, UrlFinding } from './dlp/secret-scan.js';

export interface AdmissionRequest {
  readonly method: string;
  /** Absolute URL, or host:port for CONNECT. */
  readonly target: string;
  readonly transport: Transport;
  readonly requestId: string;
  /**
   * The address a tunnel's CONNECT was admitted to: its inner requests go to the same host
   * (the Host check sees to that), so they reuse the checked address instead of resolving again.
   */
  readonly address?: IpAddress;
  /** Methods the request asks the origin to take it for (X-HTTP-Method-Override, `_method`). */
  readonly methodOverrides?: readonly MethodOverride[];
  /** Paths the request asks the origin to route it by (X-Original-URL, X-Rewrite-URL). */
  readonly pathOverrides?: readonly PathOverride[];
}

export interface MethodOverride {
  /** Where the request asks for it: a header's name, or the query parameter. */
  readonly source: string;
  readonly method: string;
}

export interface PathOverride {
  /** The header's name. */
  readonly source: string;
  /** The request's URL with the header's path and query in place of its own. */
  readonly target: string;
}

/**
 * Headers many frameworks take as the request's real method: X-HTTP-Method-Override,
 * X-HTTP-Method and X-Method-Override, with `_` for any `-` (names arrive lowercased).
 */
const METHOD_OVERRIDE_HEADER = /^x[-_](?:http[-_]method(?:[-_]override)?|method[-_]override)$/;

/**
 * Each method the request asks for: the override headers (a repeated one arrives joined with
 * commas; CGI and PHP read `_` in a name as `-`), and on a POST the `_method` query parameter
 * (Rails, Laravel, Symfony, Express's method-override).
 */
export function methodOverrides(
  method: string,
  target: string,
  headers: IncomingHttpHeaders,
): readonly MethodOverride[] {
  const asked = (source: string, values: readonly string[]) =>
    values.map((value) => ({ source, method: value.trim().toUpperCase() }));
  const fromHeaders: MethodOverride[] = [];
  // A loop, not entries(): every request passes here, and almost none has such a header.
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || !METHOD_OVERRIDE_HEADER.test(name)) continue;
    const values = (Array.isArray(value) ? value : [value]).flatMap((text) => text.split(','));
    fromHeaders.push(...asked(name, values));
  }
  const query = target.indexOf('?');
  if (method.toUpperCase() !== 'POST' || query < 0) return fromHeaders;
  const parameters = target.slice(query + 1).split('#', 1)[0] ?? '';
  return [...fromHeaders, ...asked('the query parameter _method', formMethods(parameters))];
}

/**
 * The request with what it asks the origin to take it for (the methods and paths of
 * `methodOverrides` and `pathOverrides`), to be judged as each; or why those headers cannot be.
 */
export function withAskedOverrides(
  request: AdmissionRequest,
  headers: { readonly parsed: IncomingHttpHeaders; readonly raw: readonly string[] },
): { readonly judged: AdmissionRequest } | { readonly problem: string } {
  const routed = pathOverrides(request.target, headers.raw);
  if ('problem' in routed) return routed;
  return {
    judged: {
      ...request,
      methodOverrides: methodOverrides(request.method, request.target, headers.parsed),
      pathOverrides: routed.overrides,
    },
  };
}

/**
 * Headers some servers route by instead of the request's path: IIS rewrite setups set them,
 * and Symfony before 5 and Zend Framework take them from any client (CGI reads `_` as `-`).
 */
const PATH_OVERRIDE_HEADER = /^x[-_](?:original|rewrite)[-_]url$/i;

/**
 * The request's URL as each path override header would route it, or why the headers cannot
 * be judged: a value that is neither a path nor an absolute URL, or a repeated header (servers
 * join repeats, and a joined value is a path no rule was written for).
 */
export function pathOverrides(
  target: string,
  rawHeaders: readonly string[],
): { readonly overrides: readonly PathOverride[] } | { readonly problem: string } {
  const overrides: PathOverride[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const source = rawHeaders[i] ?? '';
    if (!PATH_OVERRIDE_HEADER.test(source)) continue;
    const kind = source.toLowerCase().replace(/_/g, '-');
    if (seen.has(kind))
      return { problem: `${source} is sent more than once; send it once, or not at all` };
    seen.add(kind);
    const path = routedPath(rawHeaders[i + 1] ?? '');
    if (path === undefined) {
      return {
        problem: `${source} must be a path (/…) or an absolute http(s) URL; servers that route by it would take it for the request's path`,
      };
    }
    overrides.push({ source, target: `${originOf(target)}${path}` });
  }
  return { overrides };
}

/** The path and query a server routes by, from a path override header's value. */
function routedPath(value: string): string | undefined {
  const text = value.trim();
  if (text === '') return '/';
  if (text.startsWith('/')) return text;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(text);
  if (absolute === null) return undefined;
  const rest = text.slice(absolute[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** `scheme://authority` of an absolute URL. */
function originOf(url: string): string {
  const authority = url.indexOf('://') + 3;
  const path = url.slice(authority).search(/[/?#]/);
  return path < 0 ? url : url.slice(0, authority + path);
}

export type Admission =
  | {
      readonly admitted: true;
      readonly decision: Decision;
      /** The checked address to connect to. */
      readonly address: IpAddress;
      /** The receipt fields of this request, for later outcome receipts. */
      readonly entry: DecisionEntry;
    }
  | { readonly admitted: false; readonly refusal: Refusal };

export interface AdmissionContext {
  readonly policy: Policy;
  readonly log: DecisionLog;
  readonly resolver: Resolver;
  readonly scanner: SecretScanner;
  readonly onDecision: (entry: DecisionEntry) => void;
  /** A block that could not be recorded is still a block; the failure is reported here. */
  readonly onEvidenceError: (error: Error) => void;
}

/**
 * Looks at what the URL does not show (headers, body) once the request is otherwise allowed,
 * before its receipt is written; a refusal it returns becomes the request's block receipt,
 * and methods the body asks for are judged as the headers' are.
 */
export type Inspection = (decision: Decision, scope: InspectionScope) => Promise<Inspected>;

export interface InspectionScope {
  /** The request's target and each one a path override header routes it to. */
  readonly reach: readonly RequestTarget[];
  /**
   * Whether some method is refused for the request: at any target it reaches or at the
   * addresses it goes to (a rule naming one may confine methods). A body that may name another
   * method (`_method`) must then be read.
   */
  readonly someMethodRefused: () => boolean;
}

/** A refusal, or methods the body asks the origin to take the request for (`_method`). */
export type Inspected =
  | { readonly refusal: Refusal }
  | { readonly methodOverrides: readonly MethodOverride[] }
  | undefined;

export async function admit(
  context: AdmissionContext,
  request: AdmissionRequest,
  inspect?: Inspection,
): Promise<Admission> {
  // A WebSocket handshake is a GET: `methods` judge it as one; its receipt says WS.
  const method = request.method === 'WS' ? 'GET' : request.method;
  const paths = request.pathOverrides ?? [];
  // A request is judged as every method it may be taken for, at every path it may be routed to.
  const judgedAt = (asked: string, why: string | undefined) =>
    paths.map(({ source, target }) => {
      const judged = decide(context.policy, { method: asked, target });
      const routed = `${source} routes it to ${target.slice(originOf(target).length)}`;
      return { ...judged, reason: `${why ? `${why} and ` : ''}${routed}: ${judged.reason}` };
    });
  const judgedAs = (overrides: readonly MethodOverride[]) =>
    overrides.flatMap(({ source, method: asked }) => {
      const why = `${source} asks for ${asked}`;
      const judged = decide(context.policy, { method: asked, target: request.target });
      return [{ ...judged, reason: `${why}: ${judged.reason}` }, ...judgedAt(asked, why)];
    });
  let overrides = request.methodOverrides ?? [];
  const routedDecisions = judgedAt(method, undefined);
  const own =
    request.method === 'WS'
      ? decideWebSocket(context.policy, request.target)
      : decide(context.policy, { method, target: request.target });
  let decision = strictest(own, [...routedDecisions, ...judgedAs(overrides)]);
  const leak = context.scanner.scanUrl(request.target, decision.target);
  // The URL an origin routes by is as much a URL as the request's own.
  const routedLeak = paths
    .map(({ source, target }, index) => {
      const found = context.scanner.scanUrl(target, routedDecisions[index]?.target);
      return found && { ...found, where: `${source} header` };
    })
    .find((found) => found !== undefined);
  const entry: DecisionEntry = {
    actionId: randomUUID(),
    requestId: request.requestId,
    transport: request.transport,
    method: request.method.toUpperCase(),
    target: recordedTarget(context.scanner, receiptTarget(request, decision), leak),
    verdict: 'allow',
  };
  const refuse = async (status: number, layer: string, reason: string): Promise<Admission> => {
    await record(context, { ...entry, verdict: 'block', layer, pattern: reason }).catch(
      (error: Error) => context.onEvidenceError(error),
    );
    return { admitted: false, refusal: { status, layer, reason } };
  };
  // A secret blocks in audit mode too, and its block says nothing else about the request.
  const urlLeak = leak ?? routedLeak;
  if (urlLeak) {
    const refusal = dlpRefusal(urlLeak);
    return refuse(refusal.status, refusal.layer, refusal.reason);
  }
  if (decision.verdict === 'block') {
    const layer = decision.layer ?? 'destination';
    return refuse(layer === 'request' ? 400 : 403, layer, decision.reason);
  }
  const target = decision.target;
  if (target === undefined) throw new Error('unreachable: an allowed decision has a target');
  // The path goes upstream as the client spelled it, and so do the paths it asks the origin to
  // route it by: each must be the path the rules judged.
  const misspelled =
    target.kind === 'url'
      ? (spellingProblem(request.target) ??
        paths
          .map(({ source, target: routed }) => {
            const problem = spellingProblem(routed);
            return problem && `the ${source} header: ${problem}`;
          })
          .find((problem) => problem !== undefined))
      : undefined;
  if (misspelled) return refuse(400, 'request', misspelled);
  let addresses: IpAddress[];
  if (request.address !== undefined) {
    // A tunnel's inner request goes to the address its CONNECT was admitted to, judged again
    // for this request: a rule naming that address may allow GET there and not DELETE.
    addresses = [request.address];
  } else {
    try {
      addresses = await context.resolver.resolve(target.host);
    } catch (error) {
      return refuse(403, 'ssrf', `SSRF check failed: ${(error as Error).message}`);
    }
  }
  // The SSRF floor holds in audit mode too: audit relaxes the policy, not the guard.
  const routedTargets = routedDecisions.flatMap((routed) => routed.target ?? []);
  const checkAddresses = (methods = [method, ...overrides.map((o) => o.method)]): AddressCheck => {
    const own = checkResolvedAddresses(context.policy, { methods, target }, addresses);
    if (!own.ok) return own;
    let scan = own.scan;
    for (const routed of routedTargets) {
      const check = checkResolvedAddresses(context.policy, { methods, target: routed }, addresses);
      if (!check.ok) return check;
      scan ||= check.scan;
    }
    return { ...own, scan };
  };
  let checked = checkAddresses();
  if (!checked.ok) return refuse(403, 'ssrf', checked.reason);
  // A rule naming the address the request goes to may ask for its content scanned too.
  if (checked.scan) decision = { ...decision, scan: true };
  const someMethodRefused = () =>
    METHODS.some(
      (asked) =>
        [
          decide(context.policy, { method: asked, target: request.target }),
          ...judgedAt(asked, undefined),
        ].some((judged) => judged.verdict !== 'allow') || !checkAddresses([asked]).ok,
    );
  const inspected = await inspect?.(decision, {
    reach: [target, ...routedTargets],
    someMethodRefused,
  });
  if (inspected && 'refusal' in inspected) {
    const { status, layer, reason } = inspected.refusal;
    return refuse(status, layer, reason);
  }
  if (inspected && inspected.methodOverrides.length > 0) {
    overrides = [...overrides, ...inspected.methodOverrides];
    decision = strictest(decision, judgedAs(inspected.methodOverrides));
    if (decision.verdict === 'block')
      return refuse(403, decision.layer ?? 'method', decision.reason);
    checked = checkAddresses();
    if (!checked.ok) return refuse(403, 'ssrf', checked.reason);
  }
  const address = checked.address;
  const admitted: DecisionEntry =
    decision.verdict === 'warn'
      ? {
          ...entry,
          verdict: 'warn',
          layer: decision.layer ?? 'destination',
          pattern: `${decision.layer ?? 'destination'}: ${decision.reason}`,
          phase: 'intent',
        }
      : { ...entry, phase: 'intent' };
  try {
    await record(context, admitted);
  } catch (error) {
    context.onEvidenceError(error as Error);
    return {
      admitted: false,
      refusal: {
        status: 503,
        layer: 'evidence',
        reason: `evidence could not be written (${(error as Error).message}); refusing to forward unrecorded traffic`,
      },
    };
  }
  return { admitted: true, decision, address, entry };
}

export function dlpRefusal(finding: DlpFinding): Refusal {
  return {
    status: 403,
    layer: 'dlp',
    reason:
      finding.failure === undefined
        ? `DLP match: ${finding.detector} in the ${finding.where}`
        : `the ${finding.where} could not be scanned (${finding.failure}); what cannot be scanned is not sent`,
  };
}

/**
 * Writes a decision's receipt, then reports it. A reason can quote what the client sent (a
 * path, a host name, an SNI): any secret in it is cut out, as out of the target.
 */
export async function record(context: AdmissionContext, entry: DecisionEntry): Promise<void> {
  const recorded =
    entry.pattern === undefined
      ? entry
      : { ...entry, pattern: context.scanner.redactText(entry.pattern) };
  await context.log.append(recorded);
  context.onDecision(recorded);
}

function receiptTarget(request: AdmissionRequest, decision: Decision): string {
  const target = decision.target;
  if (target?.kind === 'authority') return `${formatHost(target.host)}:${target.port}`;
  return request.target;
}

/**
 * A target as the evidence may hold it: the secret a URL scan found cut out (or, with none,
 * every bound secret), and no userinfo credentials.
 */
export function recordedTarget(
  scanner: SecretScanner,
  target: string,
  leak: UrlFinding | undefined,
): string {
  return redactUserinfo(leak ? leak.redactedTarget : scanner.redactBound(target));
}

/**
 * Credentials in a URL's userinfo (`http://user:pass@host/`) never go into the evidence; the
 * forwarder does not send them upstream either.
 */
function redactUserinfo(target: string): string {
  // The authority begins and ends where a URL parser finds it: after any number of slashes
  // (http:///user@host/ is refused, and recorded too), and at "\" too, in http(s) and ws(s).
  return target.replace(/^([A-Za-z][A-Za-z0-9+.-]*:[/\\]*)[^/?#\\]*@/, '$1[REDACTED]@');
}

/**
 * The request's own decision with the verdict of its strictest reading. It still goes to its
 * own target (a warning about a routed path must not send it there), scanned if any is.
 */
function strictest(own: Decision, readings: readonly Decision[]): Decision {
  const all = [own, ...readings];
  const worst =
    all.find((d) => d.verdict === 'block') ?? all.find((d) => d.verdict === 'warn') ?? own;
  const { verdict, layer, reason } = worst;
  // Scanned if any reading asks for it: a path the request is routed to may be a scanned one.
  return { ...own, verdict, layer, reason, scan: all.some((d) => d.scan) };
}
