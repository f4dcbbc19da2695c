// A recording ActionRunner and raw inputs with action.yml's defaults, for driving the
// action's logic in-process.

import { INPUT_DEFAULTS, INPUT_NAMES, type RawInputs } from '../../src/action/input-names.js';
import type { ActionRunner } from '../../src/action/runner.js';

export interface Recorded {
  outputs: Record<string, string>;
  failures: string[];
  infos: string[];
}

export function rawInputs(values: Partial<RawInputs>): RawInputs {
  return Object.fromEntries(
    INPUT_NAMES.map((name) => [name, values[name] ?? INPUT_DEFAULTS[name] ?? '']),
  ) as RawInputs;
}

export function recordingRunner(
  values: Partial<RawInputs>,
  options: { platform?: NodeJS.Platform; state?: Record<string, string> } = {},
): ActionRunner & { recorded: Recorded } {
  const recorded: Recorded = { outputs: {}, failures: [], infos: [] };
  return {
    recorded,
    platform: options.platform ?? 'linux',
    readInputs: () => rawInputs(values),
    setOutput: (name, value) => {
      recorded.outputs[name] = String(value);
    },
    setFailed: (message) => recorded.failures.push(message),
    info: (message) => recorded.infos.push(message),
    warning: (message) => recorded.infos.push(`warning: ${message}`),
    getState: (name) => options.state?.[name] ?? '',
  };
}
