// Credential formats the engine recognises anywhere it can see (the URL always; headers,
// bodies and WebSocket messages where it sees them), plus the policy's own patterns.

import type { Policy } from '../../policy/index.js';

export interface Detector {
  readonly name: string;
  /** Global and sticky-free: scanned with matchAll over each view of the request. */
  readonly pattern: RegExp;
  /** A policy's own pattern: written by anyone, so it runs under the scan time limit. */
  readonly fromPolicy?: true;
}

const builtin = (name: string, source: string, flags = ''): Detector => ({
  name,
  pattern: new RegExp(source, `g${flags}`),
});

/**
 * The longest credential a detector spells out. Quantifiers are bounded: matching an unbounded
 * one over a run of megabytes overflows the regular expression's backtracking stack.
 */
const LONGEST = 65_536;

/** Prefix-anchored formats first: a more specific name wins over a generic one. */
export const BUILTIN_DETECTORS: readonly Detector[] = [
  builtin('github-token', String.raw`\bgh[pousr]_[A-Za-z0-9]{36,255}\b`),
  builtin('github-fine-grained-token', String.raw`\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\b`),
  builtin(
    'aws-access-key-id',
    String.raw`\b(?:AKIA|ASIA|AROA|AIDA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b`,
  ),
  builtin(
    'aws-secret-access-key',
    String.raw`aws.{0,20}secret.{0,20}?[=:"' ]{1,4}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])`,
    'i',
  ),
  builtin('slack-token', String.raw`\bxox[abposr]-[A-Za-z0-9-]{10,${LONGEST}}`),
  builtin('anthropic-api-key', String.raw`\bsk-ant-[A-Za-z0-9_-]{20,${LONGEST}}`),
  builtin(
    'openai-api-key',
    String.raw`\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,${LONGEST}}`,
  ),
  builtin('google-api-key', String.raw`\bAIza[0-9A-Za-z_-]{35}`),
  builtin('npm-token', String.raw`\bnpm_[A-Za-z0-9]{36}\b`),
  builtin('pypi-token', String.raw`\bpypi-[A-Za-z0-9_-]{50,${LONGEST}}`),
  builtin('stripe-key', String.raw`\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,${LONGEST}}`),
  builtin(
    'private-key',
    String.raw`-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----`,
  ),
  builtin(
    'jwt',
    String.raw`\beyJ[A-Za-z0-9_-]{10,${LONGEST}}\.eyJ[A-Za-z0-9_-]{10,${LONGEST}}\.[A-Za-z0-9_-]{10,${LONGEST}}`,
  ),
  builtin(
    'credential-in-url',
    String.raw`(?:^|[?&;])(?:password|passwd|pwd|secret|client_secret|token|access_token|api_?key|apikey|auth)=[^&#\s]{6,${LONGEST}}`,
    'i',
  ),
];

/** The detectors a policy turns on: the built-ins (unless `dlp.builtin: false`) and its own. */
export function policyDetectors(policy: Policy): Detector[] {
  const own = policy.dlp.patterns.map((pattern) => ({
    name: pattern.name,
    pattern: new RegExp(pattern.regex, 'gu'),
    fromPolicy: true as const,
  }));
  return [...(policy.dlp.builtin ? BUILTIN_DETECTORS : []), ...own];
}
