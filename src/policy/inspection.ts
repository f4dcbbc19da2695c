// Whether a rule judges what travels inside TLS: shared by the decision (a tunnel is
// intercepted when a rule covering it does) and validation (`tls: passthrough` beside one).
import type { Destination } from './destination.js';

export interface InspectedRule {
  readonly destination: Destination;
  readonly methods?: readonly string[] | undefined;
  readonly paths?: readonly string[] | undefined;
  readonly scan?: boolean | undefined;
  readonly tls?: 'passthrough' | undefined;
}

/**
 * It restricts methods or paths, scans, or is a URL prefix, and is not `tls: passthrough`; an
 * `http://` URL prefix judges plain HTTP only (requests inside TLS are https).
 */
export function needsInspection(rule: InspectedRule): boolean {
  return (
    rule.tls !== 'passthrough' &&
    rule.destination.url?.scheme !== 'http' &&
    (rule.methods !== undefined ||
      rule.paths !== undefined ||
      rule.scan === true ||
      rule.destination.url !== undefined)
  );
}
