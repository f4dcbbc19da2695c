// A recording ActionRunner and raw inputs with action.yml's defaults, for driving the
// action's logic in-process.

import { INPUT_DEFAULTS, INPUT_NAMES, type RawInputs } from '../../src/action/input-names.js';
import type { ActionRunner } from '../../src/action/runner.js';

export interface Recorded {
  outputs: Record<string, string>;
  failures: string[];
  infos: string[];
  state: Record<string, string>;
  secrets: string[];
  paths: string[];
  summaries: string[];
}

export function rawInputs(values: Partial<RawInputs>): RawInputs {
  return Object.fromEntries(
    INPUT_NAMES.map((name) => [name, values[name] ?? INPUT_DEFAULTS[name] ?? '']),
  ) as RawInputs;
}

export function recordingRunner(
  values: Partial<RawInputs>,
  options: {
    platform?: NodeJS.Platform;
    state?: Record<string, string>;
    env?: NodeJS.ProcessEnv;
    uid?: number;
  } = {},
): ActionRunner & { recorded: Recorded } {
  const recorded: Recorded = {
    outputs: {},
    failures: [],
    infos: [],
    state: { ...options.state },
    secrets: [],
    paths: [],
    summaries: [],
  };
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
    getState: (name) => recorded.state[name] ?? '',
    saveState: (name, value) => {
      recorded.state[name] = value;
    },
    setSecret: (value) => recorded.secrets.push(value),
    addPath: (dir) => recorded.paths.push(dir),
    notice: (message) => recorded.infos.push(`notice: ${message}`),
    pauseCommands: () => {
      recorded.infos.push('commands paused');
      return () => recorded.infos.push('commands resumed');
    },
    appendSummary: (markdown) => {
      recorded.summaries.push(markdown);
      return Promise.resolve(true);
    },
    env: options.env ?? process.env,
    uid: options.uid ?? 0,
  };
}
