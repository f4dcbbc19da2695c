// Action inputs (DESIGN §8): raw strings in, typed values or every problem out, each
// naming the input. Pure: the caller supplies the raw values.

import * as z from 'zod';
import { parseNamePin, parseNamePins, type NamePin } from '../engine/name-pin.js';
import type { RawInputs } from './input-names.js';
import { identityProblem } from '../agent-identity.js';

const path = (what: string) =>
  z
    .string()
    .refine((value) => !value.includes('\0'), { error: `${what} contains a NUL byte` })
    .refine((value) => !/[\r\n]/.test(value), { error: `${what} must be one path on one line` });

const requiredPath = (what: string) =>
  path(what).refine((value) => value !== '', { error: `${what} is required` });

const optionalPath = (what: string) =>
  path(what).transform((value) => (value === '' ? undefined : value));

// Same spellings as @actions/core's getBooleanInput.
const flag = z
  .enum(['true', 'True', 'TRUE', 'false', 'False', 'FALSE'], {
    error: (issue) => `expected true or false, got ${JSON.stringify(issue.input)}`,
  })
  .transform((value) => value.toLowerCase() === 'true');

/** One item per line; a trailing newline adds nothing, a blank line inside the list is kept. */
function lines(value: string): string[] {
  if (value === '') return [];
  return value.replace(/\r?\n$/, '').split(/\r?\n/);
}

const pathList = (what: string) =>
  z.string().transform((value, ctx) => {
    const items = lines(value).filter((line) => line.trim() !== '');
    for (const item of items)
      if (item.includes('\0'))
        ctx.addIssue({ code: 'custom', message: `${what} contains a NUL byte` });
    return items;
  });

const resolvePins = z.string().transform((value, ctx): NamePin[] => {
  const given = lines(value)
    .map((line, index) => ({ text: line.trim(), number: index + 1 }))
    .filter(({ text }) => text !== '');
  const problems = given.flatMap(({ text, number }) => {
    const pin = parseNamePin(text);
    return typeof pin === 'string' ? [`line ${number}: ${pin}`] : [];
  });
  // Each line on its own first; then together: one name pinned to two addresses.
  if (problems.length === 0) {
    const pins = parseNamePins(given.map(({ text }) => text));
    if (typeof pins !== 'string') return pins;
    problems.push(pins);
  }
  for (const message of problems) ctx.addIssue({ code: 'custom', message });
  return [];
});

const inputSchema = z
  .object({
    'agent-script': requiredPath('the agent script path'),
    'agent-args': z.string().transform(lines),
    'policy-config': requiredPath('the policy file path'),
    'enforcement-binary': optionalPath('the binary path'),
    'pipelock-version': z
      .string()
      .refine(
        (value) => value === '' || /^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$/.test(value),
        {
          error: 'expected a release version such as 2.4.0',
        },
      )
      .transform((value) => (value === '' ? undefined : value.replace(/^v/, ''))),
    'pipelock-sha256': z
      .string()
      .refine((value) => value === '' || /^[0-9a-fA-F]{64}$/.test(value), {
        error: 'expected 64 hex digits',
      })
      .transform((value) => (value === '' ? undefined : value.toLowerCase())),
    'pipelock-download-url': z
      .string()
      .refine(
        (value) =>
          value === '' || (/^https:\/\/[^\s]+$/.test(value) && value.includes('{version}')),
        {
          error: 'expected an https:// URL template containing {version}',
        },
      )
      .transform((value) => (value === '' ? undefined : value)),
    'evidence-output': requiredPath('the evidence output directory'),
    'signing-key': z.string().transform((value) => (value === '' ? undefined : value)),
    'public-key': z.string().transform((value) => (value === '' ? undefined : value)),
    'agent-identity': z.string().superRefine((value, context) => {
      const problem = identityProblem(value);
      if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
    }),
    'working-directory': requiredPath('the working directory'),
    'fail-on-verifier-error': flag,
    'upload-artifact': flag,
    'artifact-name': z.string().refine((value) => value !== '' && !/["\\/:<>|*?\r\n]/.test(value), {
      error: 'expected a non-empty name without " : < > | * ? \\ / or line breaks',
    }),
    'job-summary': flag,
    'writable-paths': pathList('a writable path'),
    resolve: resolvePins,
    'upstream-ca': optionalPath('the upstream CA file path'),
  })
  .superRefine((inputs, ctx) => {
    if (inputs['public-key'] !== undefined && inputs['signing-key'] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['public-key'],
        message:
          'a pinned public key needs the matching signing-key; set signing-key, or omit public-key for an ephemeral key (verdict self_consistent_only)',
      });
    }
    if (inputs['enforcement-binary'] !== undefined && inputs['pipelock-version'] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['pipelock-version'],
        message:
          'set either enforcement-binary (a binary already on the runner) or pipelock-version (download), not both',
      });
    }
    if (inputs['pipelock-version'] !== undefined && inputs['pipelock-sha256'] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['pipelock-sha256'],
        message:
          'a downloaded pipelock release is checked against its SHA-256 before it runs; set pipelock-sha256',
      });
    }
  });

export type ActionInputs = z.output<typeof inputSchema>;

export type InputsResult = { ok: true; inputs: ActionInputs } | { ok: false; errors: string[] };

export function parseInputs(raw: RawInputs): InputsResult {
  const parsed = inputSchema.safeParse(raw);
  if (parsed.success) return { ok: true, inputs: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map(
      (issue) => `input ${String(issue.path[0] ?? '(inputs)')}: ${issue.message}`,
    ),
  };
}
