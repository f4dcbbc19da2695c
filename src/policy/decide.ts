// The egress decision: pure, from a policy and a request to a verdict with its reason.
// The engine turns this one value into the HTTP answer, the receipt and the log line.

import { formatHost, type Host } from './host.js';
import { hostMatches, type Destination } from './destination.js';
import { needsInspection } from './inspection.js';
import { pathReadings, pathWithin } from './path.js';
import { parseRequestTarget, type RequestTarget } from './target.js';
import type { EgressRule, Policy } from './load.js';

export type Verdict = 'allow' | 'block' | 'warn';
export type DecisionLayer = 'request' | 'destination' | 'port' | 'path' | 'method' | 'websocket';

export interface Decision {
  /** `warn`: the policy would block, but `mode: audit` lets the request pass. */
  readonly verdict: Verdict;
  /** The check that blocked (or would have); undefined when allowed. */
  readonly layer: DecisionLayer | undefined;
  readonly reason: string;
  /** The rule that allowed the request, or the closest rule that refused it. */
  readonly rule: EgressRule | undefined;
  /** Scan headers and body for secrets where they are visible. */
  readonly scan: boolean;
  /** For a CONNECT: some rule needs to see inside TLS (methods, paths, scan, URL prefix). */
  readonly intercept: boolean;
  /** A rule that allows the request says `tls: passthrough`: never intercepted, whatever else. */
  readonly passthrough: boolean;
  readonly target: RequestTarget | undefined;
}

export interface EgressRequest {
  readonly method: string;
  /** An absolute URL (http, https, ws, wss) or, for CONNECT, host:port. */
  readonly target: string;
}

// How far a rule got before refusing: the furthest explains the block best.
const LAYER_ORDER: readonly DecisionLayer[] = ['port', 'path', 'method'];

type RuleOutcome = { allowed: true } | { allowed: false; layer: DecisionLayer; reason: string };

export function decide(policy: Policy, request: EgressRequest): Decision {
  const method = request.method.toUpperCase();
  const parsed = parseRequestTarget(request.target);
  if (!parsed.ok)
    return refuse(policy, 'request', `malformed target: ${parsed.problem}`, undefined, undefined);
  const target = parsed.target;
  if (method === 'CONNECT' && target.kind !== 'authority') {
    return refuse(policy, 'request', 'CONNECT takes host:port, not a URL', undefined, target);
  }
  if (method !== 'CONNECT' && target.kind === 'authority') {
    return refuse(
      policy,
      'request',
      `${method} needs a URL; only CONNECT takes host:port`,
      undefined,
      target,
    );
  }
  const host = formatHost(target.host);
  const candidates = policy.egress.filter((rule) =>
    hostMatches(rule.destination.host, target.host),
  );
  if (candidates.length === 0) {
    if (policy.default_deny)
      return refuse(policy, 'destination', `no egress rule allows ${host}`, undefined, target);
    return {
      verdict: 'allow',
      layer: undefined,
      reason: `no egress rule names ${host}; allowed because default_deny is false`,
      rule: undefined,
      scan: true,
      intercept: false,
      passthrough: false,
      target,
    };
  }
  const outcomes = candidates.map((rule) => ({ rule, outcome: judge(rule, method, target) }));
  const allowing = outcomes.filter(({ outcome }) => outcome.allowed).map(({ rule }) => rule);
  // A tunnel is credited to a rule that admits TLS where one does: it usually carries TLS.
  const allowedBy =
    (target.kind === 'authority' ? allowing.find((rule) => !plainHttpOnly(rule)) : undefined) ??
    allowing[0];
  if (allowedBy !== undefined) {
    return {
      verdict: 'allow',
      layer: undefined,
      reason: `allowed by egress[${allowedBy.index}] (${allowedBy.destination.canonical})`,
      rule: allowedBy,
      scan: allowing.some((rule) => rule.scan),
      intercept:
        target.kind === 'authority' &&
        (inspectedOn(policy, target.host, target.port) || plainHttpOnly(allowedBy)),
      passthrough: allowing.some((rule) => rule.tls === 'passthrough'),
      target,
    };
  }
  const refusals = outcomes.flatMap(({ rule, outcome }) =>
    outcome.allowed ? [] : [{ rule, ...outcome }],
  );
  refusals.sort((a, b) => LAYER_ORDER.indexOf(b.layer) - LAYER_ORDER.indexOf(a.layer));
  const closest = refusals[0];
  if (closest === undefined) throw new Error('unreachable: candidates without an outcome');
  return refuse(policy, closest.layer, closest.reason, closest.rule, target);
}

/** Whether this rule, on its own, allows the request (its host aside): port, scheme, path, method. */
export function ruleAllows(rule: EgressRule, method: string, target: RequestTarget): boolean {
  return judge(rule, method.toUpperCase(), target).allowed;
}

function judge(rule: EgressRule, method: string, target: RequestTarget): RuleOutcome {
  const where = `egress[${rule.index}] (${rule.destination.canonical})`;
  if (!portAllowed(rule, target.port)) {
    return {
      allowed: false,
      layer: 'port',
      reason: `port ${target.port} is not allowed by ${where}; allowed: ${rulePorts(rule).join(', ')}`,
    };
  }
  // A tunnel is judged on host and port; what travels inside is judged request by request,
  // a URL prefix's scheme and path included.
  if (target.kind === 'authority') return { allowed: true };
  const { url } = rule.destination;
  const scoped = scopeOutcome(url, url ? [url.pathPrefix] : rule.paths, target, where);
  if (!scoped.allowed) return scoped;
  if (rule.methods && !(rule.methods as readonly string[]).includes(method)) {
    return {
      allowed: false,
      layer: 'method',
      reason: `method ${method} is not allowed by ${where}; allowed: ${rule.methods.join(', ')}`,
    };
  }
  return { allowed: true };
}

/** A URL prefix's scheme, and every reading of the path within one of the prefixes. */
function scopeOutcome(
  url: Destination['url'],
  prefixes: readonly string[] | undefined,
  target: Extract<RequestTarget, { kind: 'url' }>,
  where: string,
): RuleOutcome {
  if (url && url.scheme !== target.scheme) {
    return {
      allowed: false,
      layer: 'path',
      reason: `${where} allows only ${url.scheme}, not ${target.scheme}`,
    };
  }
  if (prefixes) {
    const readings = pathReadings(target.pathname);
    if (!readings.ok)
      return { allowed: false, layer: 'path', reason: `${readings.problem}; refused as ambiguous` };
    const outside = readings.readings.find(
      (path) => !prefixes.some((prefix) => pathWithin(path, prefix)),
    );
    if (outside !== undefined) {
      return {
        allowed: false,
        layer: 'path',
        reason: `path ${outside} is outside ${where}; allowed: ${prefixes.join(', ')}`,
      };
    }
  }
  return { allowed: true };
}

/**
 * The `secrets:`-bound variables that may not go to this target: where they have a value, the
 * engine scans (and for a tunnel, intercepts) traffic there to keep them out.
 */
export function secretsKeptFrom(policy: Policy, target: RequestTarget): string[] {
  return policy.secrets
    .filter((secret) => !secret.allow.some((destination) => secretMayGo(destination, target)))
    .map((secret) => secret.env);
}

/**
 * Whether a `secrets[].allow` destination admits this target, as a rule naming it would: its
 * host, its port (80 and 443 when it names none), a URL prefix's scheme and every reading of
 * the path. A tunnel is admitted whole only where no path is singled out; otherwise each
 * request inside it is judged.
 */
export function secretMayGo(destination: Destination, target: RequestTarget): boolean {
  if (!hostMatches(destination.host, target.host)) return false;
  if (!(destination.port === undefined ? [80, 443] : [destination.port]).includes(target.port))
    return false;
  const { url } = destination;
  if (url === undefined) return true;
  if (target.kind === 'authority') return url.scheme === 'https' && url.pathPrefix === '/';
  return scopeOutcome(url, [url.pathPrefix], target, '').allowed;
}

/** Ports a rule covers: its destination's, its `ports`, else 80 and 443. */
export function rulePorts(rule: EgressRule): readonly number[] {
  const { port } = rule.destination;
  return port !== undefined ? [port] : (rule.ports ?? [80, 443]);
}

function portAllowed(rule: EgressRule, port: number): boolean {
  return rulePorts(rule).includes(port);
}

/**
 * An `http://` URL prefix admits the plain HTTP a tunnel may carry (Node's fetch and curl
 * --proxytunnel send http:// URLs that way); TLS in a tunnel only such rules admit is opened,
 * so that its https requests are refused one by one rather than relayed unseen.
 */
export function plainHttpOnly(rule: EgressRule): boolean {
  return rule.destination.url?.scheme === 'http';
}

/**
 * Whether a rule naming this host on this port needs to see inside TLS to judge a tunnel's
 * requests: it restricts methods or paths, scans, or is a URL prefix.
 */
export function inspectedOn(policy: Policy, host: Host, port: number): boolean {
  return policy.egress.some(
    (rule) =>
      hostMatches(rule.destination.host, host) && portAllowed(rule, port) && needsInspection(rule),
  );
}

/**
 * A WebSocket handshake to `target`: judged as a GET of it, and refused (in audit mode,
 * warned) where the policy has WebSockets off.
 */
export function decideWebSocket(policy: Policy, target: string): Decision {
  const decision = decide(policy, { method: 'GET', target });
  if (policy.websocket.enabled || decision.verdict !== 'allow') return decision;
  return {
    ...decision,
    verdict: policy.mode === 'audit' ? 'warn' : 'block',
    layer: 'websocket',
    reason: 'WebSocket is not enabled by the policy (websocket.enabled: false)',
  };
}

function refuse(
  policy: Policy,
  layer: DecisionLayer,
  reason: string,
  rule: EgressRule | undefined,
  target: RequestTarget | undefined,
): Decision {
  // A malformed request cannot be forwarded, so even audit mode refuses it.
  const auditable = policy.mode === 'audit' && layer !== 'request';
  return {
    verdict: auditable ? 'warn' : 'block',
    layer,
    reason,
    rule,
    // What passes only because of audit mode is scanned, a tunnel too: opened, so that a
    // secret in a header or body is refused as it is over plain HTTP.
    scan: true,
    intercept: auditable && target?.kind === 'authority',
    passthrough: false,
    target,
  };
}
