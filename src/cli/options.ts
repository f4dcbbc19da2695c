// Long options of one command: `--name value`, `--name=value`, repeatable values and flags.
import { HelpRequested, isHelpOption, UsageError } from './io.js';

export interface OptionSpec {
  /** Options that take one value. */
  readonly single?: readonly string[];
  /** Options that take a value and may be given more than once. */
  readonly repeatable?: readonly string[];
  /** Options without a value. */
  readonly flags?: readonly string[];
}

export interface ParsedOptions {
  readonly values: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
}

export function parseOptions(
  command: string,
  args: readonly string[],
  spec: OptionSpec,
): ParsedOptions {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    // Where an option may stand only: as an option's value it is that value.
    if (isHelpOption(arg)) throw new HelpRequested();
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (spec.flags?.includes(name)) {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      flags.add(name);
      continue;
    }
    const repeatable = spec.repeatable?.includes(name) ?? false;
    if (!repeatable && !spec.single?.includes(name))
      throw new UsageError(`${command}: unknown option "--${name}"`);
    const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || value === '')
      throw new UsageError(`${command}: --${name} needs a value`);
    const seen = values.get(name) ?? [];
    if (seen.length > 0 && !repeatable)
      throw new UsageError(`${command}: --${name} may be given only once`);
    values.set(name, [...seen, value]);
  }
  return { values, flags };
}

/** The value of a single-valued option, if given. */
export function optionValue(options: ParsedOptions, name: string): string | undefined {
  return options.values.get(name)?.[0];
}
