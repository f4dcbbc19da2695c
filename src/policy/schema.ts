// The policy file's shape (DESIGN §4) as zod schemas; semantic rules live beside the fields
// they constrain so that each error points at the key to fix.

import * as z from 'zod';
import {
  DEFAULT_PORTS,
  type Destination,
  hostPatternText,
  parseDestination,
} from './destination.js';
import { passthroughConflicts } from './passthrough-conflicts.js';
import { rulePathProblem } from './path.js';
import { canMatchEmpty } from './empty-match.js';

export const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
] as const;
export type Method = (typeof METHODS)[number];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PATTERN_NAME = /^[a-z0-9][a-z0-9_-]*$/;

type Issue = Parameters<z.core.$RefinementCtx['addIssue']>[0];

function issue(code: string, message: string, path: PropertyKey[] = []): Issue {
  return { code: 'custom', message, params: { code }, path };
}

const destination = z.string().transform((text, ctx): Destination => {
  const parsed = parseDestination(text);
  if (parsed.ok) return parsed.destination;
  ctx.addIssue(issue('bad_destination', parsed.problem));
  return z.NEVER;
});

function uniqueList<T extends z.ZodType>(item: T, what: string) {
  return z
    .array(item)
    .min(1, { error: `the list is empty; list at least one ${what} or remove the key` })
    .superRefine((items, ctx) => {
      const seen = new Set<string>();
      items.forEach((value, index) => {
        const key = JSON.stringify(value);
        if (seen.has(key))
          ctx.addIssue(
            issue('invalid_value', `${key} is listed twice; list each ${what} once`, [index]),
          );
        seen.add(key);
      });
    });
}

const port = z
  .int({ error: 'expected a port number (1-65535)' })
  .min(1, { error: 'a port is a number from 1 to 65535' })
  .max(65535, { error: 'a port is a number from 1 to 65535' });

const pathPrefix = z.string().superRefine((path, ctx) => {
  const problem = rulePathProblem(path);
  if (problem !== undefined) ctx.addIssue(issue('bad_path', `"${path}" ${problem}`));
});

/**
 * Cross-field checks run even when some fields failed (zod skips them by default), so that
 * all errors are reported at once; they then see partly unvalidated values and check shapes.
 */
const whenMapping = {
  when: (payload: { value: unknown }) =>
    typeof payload.value === 'object' && payload.value !== null,
};

function isDestination(value: unknown): value is Destination {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { canonical?: unknown }).canonical === 'string'
  );
}

function listOrEmpty<T>(value: readonly T[] | undefined): readonly T[] {
  return Array.isArray(value) ? value : [];
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export const ruleSchema = z
  .strictObject({
    destination,
    methods: uniqueList(z.enum(METHODS), 'method').optional(),
    scan: z.boolean().default(false),
    paths: uniqueList(pathPrefix, 'path prefix').optional(),
    ports: uniqueList(port, 'port').optional(),
    tls: z.literal('passthrough').optional(),
  })
  .superRefine((rule, ctx) => {
    // Also runs when other keys of the rule are invalid (see `whenMapping`), so that every
    // error is reported at once; a destination that failed to parse is skipped.
    if (!isDestination(rule.destination)) return;
    const { url, port: destinationPort } = rule.destination;
    if (rule.ports && destinationPort !== undefined) {
      ctx.addIssue(
        issue(
          'conflict',
          url
            ? `a URL prefix fixes its port (here ${destinationPort}${destinationPort === DEFAULT_PORTS[url.scheme] ? `, the default for ${url.scheme}` : ''}); remove "ports", and write another port in the URL if you need it (${url.scheme}://host:PORT/…)`
            : `the destination already fixes port ${destinationPort}; remove "ports" or the port in the destination`,
          ['ports'],
        ),
      );
    }
    if (rule.paths && url) {
      ctx.addIssue(
        issue(
          'conflict',
          'the URL prefix destination already fixes the path; use either "paths" or a URL prefix',
          ['paths'],
        ),
      );
    }
    if (rule.tls === 'passthrough') {
      const needsInspection = [
        rule.methods && '"methods"',
        rule.paths && '"paths"',
        rule.scan === true && '"scan: true"',
        url && 'a URL prefix destination',
      ].filter(Boolean);
      if (needsInspection.length > 0) {
        ctx.addIssue(
          issue(
            'conflict',
            `"tls: passthrough" never looks inside TLS, so ${needsInspection.join(', ')} could not be enforced on HTTPS; remove one or the other`,
            ['tls'],
          ),
        );
      }
    }
  }, whenMapping);

export const websocketSchema = z.strictObject({
  enabled: z.boolean().default(false),
  frame_scan: z.boolean().default(true),
  proxy_path: z
    .literal('/ws?url=', { error: 'the WebSocket proxy path is fixed; expected "/ws?url="' })
    .default('/ws?url='),
});

export const secretSchema = z.strictObject({
  env: z.string().superRefine((name, ctx) => {
    if (!ENV_NAME.test(name)) {
      ctx.addIssue(
        issue(
          'bad_env_name',
          `"${name}" is not an environment variable name; expected letters, digits and "_", not starting with a digit`,
        ),
      );
    }
  }),
  allow: z.array(destination),
});

export const dlpPatternSchema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (!PATTERN_NAME.test(name)) {
      ctx.addIssue(
        issue(
          'invalid_value',
          `"${name}" is not a pattern name; expected lowercase letters, digits, "-" and "_"`,
        ),
      );
    }
  }),
  regex: z.string().superRefine((source, ctx) => {
    const problem = regexProblem(source);
    if (problem !== undefined) ctx.addIssue(issue('bad_pattern', problem));
  }),
});

function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source, 'u');
  } catch (error) {
    return `not a valid regular expression (${(error as Error).message}); expected JavaScript RegExp syntax with the "u" flag`;
  }
  if (canMatchEmpty(source))
    return 'the pattern can match the empty string (each part of one of its alternatives is optional or zero-width: "?", "*", "{0,n}", "^", "$", "\\b", a lookahead or lookbehind), so it would match every request; make it require at least one character';
  return undefined;
}

export const dlpSchema = z.strictObject({
  builtin: z.boolean().default(true),
  patterns: z.array(dlpPatternSchema).default([]),
});

function duplicatesBy<T>(
  items: readonly T[],
  key: (item: T) => string | undefined,
): Array<{ index: number; first: number }> {
  const firstIndex = new Map<string, number>();
  const duplicates: Array<{ index: number; first: number }> = [];
  items.forEach((item, index) => {
    const k = key(item);
    if (k === undefined) return;
    const first = firstIndex.get(k);
    if (first === undefined) firstIndex.set(k, index);
    else duplicates.push({ index, first });
  });
  return duplicates;
}

export const policySchema = z
  .strictObject({
    version: z.literal('1.0', {
      error: 'this policy version is not supported; expected version: "1.0" (quoted)',
    }),
    mode: z.enum(['enforce', 'audit']).default('enforce'),
    egress: z.array(ruleSchema),
    websocket: websocketSchema.default({
      enabled: false,
      frame_scan: true,
      proxy_path: '/ws?url=',
    }),
    default_deny: z.boolean().default(true),
    dns_resolution: z
      .literal('proxy_only', {
        error: 'the only DNS mode is "proxy_only" (the engine resolves names)',
      })
      .default('proxy_only'),
    secrets: z.array(secretSchema).default([]),
    dlp: dlpSchema.default({ builtin: true, patterns: [] }),
  })
  .superRefine((policy, ctx) => {
    // Runs even when other parts of the policy are invalid (see `whenMapping`); only the
    // well-formed parts are compared, so that every error is reported at once.
    type Rule = (typeof policy.egress)[number];
    const portsOf = (rule: Rule, destination: Destination): number[] =>
      Array.isArray(rule.ports)
        ? [...rule.ports].sort((a, b) => a - b)
        : destination.port === undefined
          ? [80, 443]
          : [destination.port];
    // The hosts, URL prefix and ports a rule covers, however written: `a.com:443` and `a.com`
    // with `ports: [443]` are one destination.
    const ruleKey = (rule: Rule) => {
      if (!isDestination(rule?.destination)) return undefined;
      const { host, url } = rule.destination;
      const hosts = hostPatternText(host);
      const where = url ? `${url.scheme}://${hosts}${url.pathPrefix}` : hosts;
      return `${where} ports=${portsOf(rule, rule.destination).join(',')}`;
    };
    const rules = listOrEmpty(policy.egress);
    for (const { index, first } of duplicatesBy(rules, ruleKey)) {
      ctx.addIssue(
        issue(
          'duplicate_rule',
          `duplicates egress[${first}] (same destination); merge the two rules into one`,
          ['egress', index, 'destination'],
        ),
      );
    }
    const ported = rules.map((rule) =>
      isDestination(rule?.destination)
        ? { ...rule, ports: portsOf(rule, rule.destination) }
        : undefined,
    );
    for (const { index, other } of passthroughConflicts(ported)) {
      ctx.addIssue(
        issue(
          'conflict',
          `egress[${other}] needs to see inside TLS for hosts and ports this rule covers too, which "tls: passthrough" forbids; narrow egress[${other}] (name its hosts one by one) or remove one of the two rules`,
          ['egress', index, 'tls'],
        ),
      );
    }
    for (const { index, first } of duplicatesBy(listOrEmpty(policy.secrets), (secret) =>
      stringOrUndefined(secret?.env),
    )) {
      ctx.addIssue(
        issue(
          'invalid_value',
          `variable already bound in secrets[${first}]; bind each variable once`,
          ['secrets', index, 'env'],
        ),
      );
    }
    for (const { index, first } of duplicatesBy(listOrEmpty(policy.dlp?.patterns), (pattern) =>
      stringOrUndefined(pattern?.name),
    )) {
      ctx.addIssue(
        issue(
          'invalid_value',
          `pattern name already used by dlp.patterns[${first}]; names must be unique`,
          ['dlp', 'patterns', index, 'name'],
        ),
      );
    }
    if (
      Array.isArray(policy.egress) &&
      policy.egress.length === 0 &&
      policy.default_deny === false
    ) {
      ctx.addIssue(
        issue(
          'allows_everything',
          'with no egress rules and default_deny false this policy allows every destination; add rules, set default_deny: true, or use mode: audit to observe',
          ['default_deny'],
        ),
      );
    }
  }, whenMapping);

export type PolicyDocument = z.output<typeof policySchema>;

/** Keys each mapping accepts, by key path with list indices removed (for "did you mean"). */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(policySchema.shape),
  egress: Object.keys(ruleSchema.shape),
  websocket: Object.keys(websocketSchema.shape),
  secrets: Object.keys(secretSchema.shape),
  dlp: Object.keys(dlpSchema.shape),
  'dlp.patterns': Object.keys(dlpPatternSchema.shape),
};
