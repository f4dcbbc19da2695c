export {
  parsePolicy,
  MAX_LISTED_ERRORS,
  MAX_POLICY_BYTES,
  type Policy,
  type PolicyResult,
  type EgressRule,
} from './load.js';
export {
  decide,
  decideWebSocket,
  plainHttpOnly,
  rulePorts,
  secretMayGo,
  secretsKeptFrom,
  type Decision,
  type DecisionLayer,
  type EgressRequest,
  type Verdict,
} from './decide.js';
export { formatPolicyError, type PolicyError, type PolicyErrorCode } from './errors.js';
export { policyHash } from './hash.js';
export { METHODS, type Method } from './schema.js';
export { formatHost, type Host } from './host.js';
export { parseDestination, type Destination } from './destination.js';
export type { RequestTarget } from './target.js';
