// What `policy explain` says the engine does with a request: the policy's decision (for a
// WebSocket, its switch too), the URL's secret scan, then what the engine applies beyond the
// rules without resolving a name (the SSRF guard for an IP address written in the target).
// An https:// URL travels inside a CONNECT tunnel: judged inside only where the engine
// intercepts it.

import {
  decide,
  decideWebSocket,
  formatHost,
  secretsKeptFrom,
  type Decision,
  type Policy,
} from '../policy/index.js';
import { formatIp } from '../policy/ip.js';
import { spellingProblem } from '../policy/target.js';
import type { Refusal } from '../engine/refusal.js';
import { dlpRefusal } from '../engine/admission.js';
import type { SecretScanner } from '../engine/dlp/secret-scan.js';
import {
  checkResolvedAddresses,
  interceptedForAddress,
  passthroughToGuardedAddress,
  specialAddressKind,
} from '../engine/ssrf.js';

export interface Explanation {
  /** The policy's decision, with what the address's own rules add (scan, interception). */
  readonly decision: Decision;
  /** The engine refuses the request whatever the decision (in audit mode too). */
  readonly refusal: Refusal | undefined;
  /** How the SSRF guard applies, for a request the rules let through. */
  readonly ssrf: string | undefined;
  /** An https:// URL: its CONNECT tunnel is intercepted, or the request goes inside it unseen. */
  readonly tunnel?: 'intercepted' | 'unseen';
}

/**
 * `scanner` reads the URL as the engine does, before anything else: a secret in it blocks the
 * request whatever the rules say (in audit mode too).
 */
export function explainRequest(
  policy: Policy,
  scanner: Pick<SecretScanner, 'scanUrl'>,
  method: string,
  target: string,
): Explanation {
  // A WebSocket handshake is judged as the GET it is (its receipts say WS); sent to the
  // engine's `/ws?url=` path, it is seen whole.
  const judged = method === 'WS' ? 'GET' : method;
  const webSocket = /^wss?:\/\//i.test(target);
  const decision = webSocket
    ? decideWebSocket(policy, target)
    : decide(policy, { method: judged, target });
  const to = decision.target;
  if (to?.kind === 'url' && to.scheme === 'https' && !webSocket) {
    const tunnel = explainRequest(policy, scanner, 'CONNECT', `${formatHost(to.host)}:${to.port}`);
    if (tunnel.refusal !== undefined || tunnel.decision.verdict === 'block') return tunnel;
    if (!intercepted(policy, tunnel.decision)) return { ...tunnel, tunnel: 'unseen' };
    return { ...judgeInside(policy, scanner, judged, target, decision), tunnel: 'intercepted' };
  }
  return judgeInside(policy, scanner, judged, target, decision);
}

/**
 * As the engine decides a tunnel's interception: for rules that judge inside, or to keep out
 * a bound secret (here: whether or not it is set) unless the rule chose `tls: passthrough`.
 */
function intercepted(policy: Policy, tunnel: Decision): boolean {
  const to = tunnel.target;
  if (tunnel.intercept) return true;
  return to !== undefined && !tunnel.passthrough && secretsKeptFrom(policy, to).length > 0;
}

/** A request the engine sees whole: plain HTTP, a WebSocket, or inside an intercepted tunnel. */
function judgeInside(
  policy: Policy,
  scanner: Pick<SecretScanner, 'scanUrl'>,
  method: string,
  target: string,
  decision: Decision,
): Explanation {
  const leak = scanner.scanUrl(target, decision.target);
  if (leak) return { decision, refusal: dlpRefusal(leak), ssrf: undefined };
  const to = decision.target;
  if (decision.verdict === 'block' || to === undefined)
    return { decision, refusal: undefined, ssrf: undefined };
  const misspelled = to.kind === 'url' ? spellingProblem(target) : undefined;
  if (misspelled) {
    return {
      decision,
      refusal: { status: 400, layer: 'request', reason: misspelled },
      ssrf: undefined,
    };
  }
  if (to.host.kind === 'name') {
    return {
      decision,
      refusal: undefined,
      ssrf: `applies to the addresses ${formatHost(to.host)} resolves to when the request is made (a loopback, private or metadata address passes only on a rule naming it)`,
    };
  }
  const { ip } = to.host;
  const checked = checkResolvedAddresses(policy, { methods: [method], target: to }, [ip]);
  if (!checked.ok)
    return {
      decision,
      refusal: { status: 403, layer: 'ssrf', reason: checked.reason },
      ssrf: undefined,
    };
  const kind = specialAddressKind(ip);
  const scanned = checked.scan ? { ...decision, scan: true } : decision;
  const intercepted =
    to.kind === 'authority' ? interceptedForAddress(policy, ip, to.port) : undefined;
  if (intercepted !== undefined && decision.passthrough) {
    const refusal = passthroughToGuardedAddress(decision, { ip, kind: intercepted, port: to.port });
    return { decision, refusal, ssrf: undefined };
  }
  return {
    decision: intercepted === undefined ? scanned : { ...scanned, intercept: true },
    refusal: undefined,
    ssrf:
      kind === undefined
        ? `passes: ${formatIp(ip)} is a public address`
        : `passes: ${formatIp(ip)} is ${/^[aeiou]/i.test(kind) ? 'an' : 'a'} ${kind} address, and a rule naming it allows this request`,
  };
}
