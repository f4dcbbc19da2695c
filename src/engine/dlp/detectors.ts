// Credential formats the engine recognises anywhere it can see (the URL always; headers,
// bodies and WebSocket messages where it sees them), plus the policy's own patterns.

import type { Policy } from '../../policy/index.js';

export interface Detector {
  readonly name: string;
  /** Global and sticky-free: scanned with matchAll over each view of the request. */
  readonly pattern: RegExp;
  /**
   * The format where a blob's decoded bytes are read, when it differs: without what must not
   * follow it. A word on the line after a wrapped blob is read as its last line, and decodes
   * to stray bytes glued to the blob's end, where a fixed-length credential may end too.
   */
  readonly decodedPattern?: RegExp;
  /** A policy's own pattern: written by anyone, so it runs under the scan time limit. */
  readonly fromPolicy?: true;
}

interface Format {
  /** What must not come before it (a lookbehind), or nothing. */
  readonly start?: string;
  /** What must not follow it (a lookahead), or nothing. */
  readonly end?: string;
  readonly flags?: string;
}

const builtin = (
  name: string,
  body: string,
  { start = '', end = '', flags = '' }: Format = {},
): Detector => ({
  name,
  pattern: new RegExp(`${start}(?:${body})${end}`, `g${flags}`),
  ...(end === '' ? {} : { decodedPattern: new RegExp(`${start}(?:${body})`, `g${flags}`) }),
});

/**
 * The longest credential a detector spells out. Quantifiers are bounded: matching an unbounded
 * one over a run of megabytes overflows the regular expression's backtracking stack.
 */
const LONGEST = 65_536;

/**
 * Not glued to a letter or digit before it: random text (a base64url upload) holds these
 * prefixes now and then, and a token is rarely written inside a word. `_` and `-` may precede
 * it (`TOKEN_ghp_…`). Formats of a fixed length are not followed by one either; the others end
 * where their characters do. A value the agent hides on purpose is a bound secret's case:
 * those are found anywhere, whatever surrounds them.
 */
const START = '(?<![A-Za-z0-9])';
const END = '(?![A-Za-z0-9])';
/**
 * A JWT (a Discord token too) starts a run of its own alphabet, `_` and `-` included: its
 * first part must end in a `.`, so a start inside a run that ends otherwise is given up only
 * at the run's end, and a run of megabytes of `-eyJ` would otherwise be read again from each
 * of them (quadratic).
 */
const JWT_START = '(?<![A-Za-z0-9_-])';

/** Values that stand for a credential not filled in. */
const PLACEHOLDER = String.raw`(?:undefined|null|none|bearer|basic|oauth2?|changeme|replace[_-]?me|your[_-][a-z_-]*|x{3,}|\*{3,}|\$\{[^}&#\s]*\}|%24%7B[^&#\s]*?%7D|<[^>&#\s]*>|%3C[^&#\s]*?%3E)`;

/**
 * A digit or a capital among a token's first `n` characters (its alphabet `extra` besides
 * lower-case letters): a random token has one, a name spelled in words (`glpat-rotation-docs`,
 * `hvs.internal-vault-example`) has not.
 */
const notWords = (n: number, extra: string) => `(?=[a-z${extra}]{0,${n - 1}}[0-9A-Z])`;

const BOUNDED = { start: START, end: END } as const;
const STARTS = { start: START } as const;

/** Prefix-anchored formats first: a more specific name wins over a generic one. */
export const BUILTIN_DETECTORS: readonly Detector[] = [
  // 30 random characters and a 6-character checksum of them: the 30 are the whole token.
  builtin('github-token', String.raw`gh[pousr]_[A-Za-z0-9]{30,255}`, STARTS),
  builtin(
    'github-fine-grained-token',
    String.raw`github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}`,
    BOUNDED,
  ),
  // Upper case, so lowercased it is the same key. Its last 16 are base32 (A-Z, 2-7): lowercased,
  // with a digit among them, they are told from words. Mixed case is what random base64 looks
  // like (one 8 MiB upload in 26 would hold one): not looked for.
  // Not as a presigned URL's X-Amz-Credential (GitHub's release downloads redirect to one):
  // there the key id is public by design, the signature beside it the short-lived credential.
  builtin(
    'aws-access-key-id',
    String.raw`(?:AKIA|ASIA|AROA|AIDA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}|(?:akia|asia|aroa|aida|agpa|anpa|anva|aipa)(?=[a-z2-7]{0,15}[2-7])[a-z2-7]{16}`,
    { start: `${START}(?<!X-Amz-Credential=)`, end: END },
  ),
  // 40 lower-case hex digits are a git commit or a SHA-1 (a key is base64: mixed case).
  builtin(
    'aws-secret-access-key',
    String.raw`(?:aws.{0,20}secret|secret_?access_?key).{0,20}?[=:"' ]{1,4}(?![0-9a-f]{40}(?![A-Za-z0-9/+]))[A-Za-z0-9/+]{40}`,
    { end: '(?![A-Za-z0-9/+])', flags: 'i' },
  ),
  // Bot, user, app-level (xapp), refresh (xoxe) and rotating (xoxe.xoxp) tokens.
  builtin(
    'slack-token',
    String.raw`(?:xox[abposre]|xoxe\.xox[bp]|xapp)-[A-Za-z0-9-]{10,${LONGEST}}`,
    STARTS,
  ),
  // `sk-ant-api03-…`: a kind and a version before the key. Names spelled with hyphens
  // (`sk-learn-…`, `sk-ant-design-…`, packages and repositories) are not keys.
  builtin(
    'anthropic-api-key',
    String.raw`sk-ant-[a-z]{2,12}[0-9]{2}-[A-Za-z0-9_-]{20,${LONGEST}}`,
    STARTS,
  ),
  // Project, service-account and admin keys carry their kind; older keys are letters and
  // digits only, a digit among their first 48.
  builtin(
    'openai-api-key',
    String.raw`sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,${LONGEST}}|sk-(?=[A-Za-z0-9]{0,47}[0-9])[A-Za-z0-9]{20,${LONGEST}}`,
    STARTS,
  ),
  builtin('google-api-key', String.raw`AIza[0-9A-Za-z_-]{35}`, STARTS),
  builtin('npm-token', String.raw`npm_[A-Za-z0-9]{36}`, BOUNDED),
  builtin('pypi-token', String.raw`pypi-[A-Za-z0-9_-]{50,${LONGEST}}`, STARTS),
  builtin('stripe-key', String.raw`(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,${LONGEST}}`, STARTS),
  // Personal, deploy, runner (and its registration), pipeline-trigger, CI job, OAuth
  // application, SCIM, feed, incoming-mail, feature-flag and agent tokens; a routable one ends
  // in `.` parts, a CI job token may be a JWT (three of them); and registration tokens of old.
  builtin(
    'gitlab-token',
    String.raw`gl(?:pat|dt|rt|rtr|ptt|cbt|oas|soat|ft|imt|ffct|agent)-${notWords(20, '_-')}[A-Za-z0-9_-]{20,${LONGEST}}(?:\.[A-Za-z0-9_-]{1,${LONGEST}}){0,2}|GR1348941[A-Za-z0-9_-]{20}`,
    STARTS,
  ),
  builtin('huggingface-token', String.raw`(?:hf_|api_org_)[A-Za-z]{34}`, BOUNDED),
  builtin('google-oauth-client-secret', String.raw`GOCSPX-[A-Za-z0-9_-]{28}`, BOUNDED),
  // A service account's and the metadata server's carry a `c.` part first.
  builtin(
    'google-oauth-access-token',
    String.raw`ya29\.(?:c\.)?${notWords(20, '_-')}[A-Za-z0-9_-]{20,${LONGEST}}`,
    STARTS,
  ),
  builtin('stripe-webhook-secret', String.raw`whsec_[A-Za-z0-9+/=]{24,${LONGEST}}`, STARTS),
  builtin('digitalocean-token', String.raw`do[opr]_v1_[0-9a-f]{64}`, BOUNDED),
  builtin(
    'vault-token',
    String.raw`hv[sbr]\.${notWords(24, '_-')}[A-Za-z0-9_-]{24,${LONGEST}}`,
    STARTS,
  ),
  builtin('sendgrid-api-key', String.raw`SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`, BOUNDED),
  builtin(
    'discord-bot-token',
    String.raw`[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}`,
    { start: JWT_START, end: '(?![A-Za-z0-9_-])' },
  ),
  builtin('groq-api-key', String.raw`gsk_[A-Za-z0-9]{52}`, BOUNDED),
  builtin('xai-api-key', String.raw`xai-[A-Za-z0-9]{80}`, BOUNDED),
  builtin('replicate-api-token', String.raw`r8_[A-Za-z0-9]{37}`, BOUNDED),
  builtin('databricks-token', String.raw`dapi[0-9a-f]{32}(?:-[0-9]{1,2})?`, BOUNDED),
  builtin('linear-api-key', String.raw`lin_api_[A-Za-z0-9]{40}`, BOUNDED),
  // User and insert keys, and license keys (40 long, ending in NRAL).
  builtin(
    'new-relic-key',
    String.raw`NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_-]{32}|[0-9a-f]{36}NRAL`,
    BOUNDED,
  ),
  // Organisation tokens (base64 of their claims, then the secret) and user tokens.
  builtin(
    'sentry-token',
    String.raw`sntrys_${notWords(40, '_')}[A-Za-z0-9+/=_]{40,${LONGEST}}|sntryu_[0-9a-f]{64}`,
    STARTS,
  ),
  // Integration tokens, and the `secret_` ones made before them.
  builtin('notion-token', String.raw`ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43}`, BOUNDED),
  builtin(
    'supabase-secret-key',
    String.raw`sb_secret_${notWords(20, '_-')}[A-Za-z0-9_-]{20,${LONGEST}}`,
    STARTS,
  ),
  builtin(
    'pinecone-api-key',
    String.raw`pcsk_${notWords(40, '_')}[A-Za-z0-9_]{40,${LONGEST}}`,
    STARTS,
  ),
  // BIP-32 extended private keys (mainnet and testnet; legacy, SegWit and multisig): base58,
  // 111 long.
  builtin(
    'bip32-extended-private-key',
    String.raw`[xyztuvYZUV]prv[1-9A-HJ-NP-Za-km-z]{107,108}`,
    BOUNDED,
  ),
  // PEM private keys, and OpenPGP's armour for one (a release-signing key in CI).
  builtin(
    'private-key',
    String.raw`-----BEGIN (?:(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY|PGP PRIVATE KEY BLOCK)-----`,
  ),
  builtin(
    'jwt',
    String.raw`eyJ[A-Za-z0-9_-]{10,${LONGEST}}\.eyJ[A-Za-z0-9_-]{10,${LONGEST}}\.[A-Za-z0-9_-]{10,${LONGEST}}`,
    { start: JWT_START },
  ),
  // Not a placeholder left where the value goes (`token=undefined`, `${TOKEN}`, `auth=bearer`).
  builtin(
    'credential-in-url',
    String.raw`(?:^|[?&;])(?:password|passwd|pwd|secret|secret_key|client[_-]secret|token|access_token|refresh_token|id_token|auth_token|private[_-]token|api[_-]?key|auth)=(?!${PLACEHOLDER}(?:[&#\s]|$))[^&#\s]{6,${LONGEST}}`,
    { flags: 'i' },
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

/**
 * The first match of `probe` (not global) in `text` that holds something. A zero-length match
 * (a policy pattern that is all lookahead) finds nothing: it would refuse every request and
 * "redact" the gaps between characters.
 */
export function firstFinding(probe: RegExp, text: string): RegExpExecArray | undefined {
  const first = probe.exec(text);
  if (first === null || first[0] !== '') return first ?? undefined;
  for (const match of text.matchAll(new RegExp(probe.source, `g${probe.flags}`)))
    if (match[0] !== '') return match;
  return undefined;
}

/** `text` with every match of `detector` that holds something replaced by its label. */
export function redactFindings(detector: Detector, text: string): string {
  const label = `[REDACTED:${detector.name}]`;
  return text.replace(detector.pattern, (match) => (match === '' ? '' : label));
}
