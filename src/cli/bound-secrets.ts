// The values of the policy's `secrets:` bindings, from the environment the engine (proxy) or
// the agent (run) gets. A binding whose variable has no value binds nothing, which a misspelt
// name would do without a word; one whose value is a few characters is found in ordinary text.
import type { Policy } from '../policy/index.js';
import type { CliIo } from './io.js';

/** Shorter values match ordinary text: every request holding one would be blocked. */
export const MIN_BOUND_SECRET_CHARS = 8;

export interface BoundSecretValues {
  /** Each bound variable that has a value, by name. */
  readonly values: Readonly<Record<string, string>>;
  /** Why the run cannot start with these values. */
  readonly problems: readonly string[];
  /** Bindings with no value: nothing is kept from other destinations under their names. */
  readonly warnings: readonly string[];
}

export function boundSecretValues(
  policy: Pick<Policy, 'secrets' | 'file'>,
  env: NodeJS.ProcessEnv,
): BoundSecretValues {
  const values: Record<string, string> = {};
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const [index, { env: name }] of policy.secrets.entries()) {
    const where = `${policy.file}: secrets[${index}] (${name})`;
    const value = env[name] ?? '';
    const length = value.trim().length;
    if (length === 0) {
      warnings.push(
        `${where}: ${name} has no value here, so nothing is kept from other destinations under that name; check the name if the agent has the secret under another`,
      );
    } else if (length < MIN_BOUND_SECRET_CHARS) {
      problems.push(
        `${where}: the value of ${name} is ${length} characters long; a bound secret needs at least ${MIN_BOUND_SECRET_CHARS} (a shorter one is found in ordinary text, so requests holding it would be blocked and their receipts would show where it appears): bind a longer secret or remove the binding`,
      );
    } else {
      values[name] = value;
    }
  }
  return { values, problems, warnings };
}

/**
 * The values the engine starts with, its warnings and problems written to `io` under `prefix`
 * (`proxy`, and `policy explain` saying what the proxy would do); undefined when the engine
 * cannot start with them.
 */
export function engineSecretValues(
  policy: Pick<Policy, 'secrets' | 'file'>,
  env: NodeJS.ProcessEnv,
  io: CliIo,
  prefix: string,
): Readonly<Record<string, string>> | undefined {
  const { values, problems, warnings } = boundSecretValues(policy, env);
  for (const warning of warnings) io.err(`${prefix}: warning: ${warning}\n`);
  for (const problem of problems) io.err(`${prefix}: ${problem}\n`);
  return problems.length > 0 ? undefined : values;
}
