// A recording ActionRunner, raw inputs with action.yml's defaults and a workspace, for driving
// the action's logic in-process.

import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { scratchDir } from '../scratch.js';
import { INPUT_DEFAULTS, INPUT_NAMES, type RawInputs } from '../../src/action/input-names.js';
import type { ActionRunner } from '../../src/action/runner.js';

export const REFERENCE_POLICY = resolve('fixtures/policies/reference.yaml');

/** A working directory with scripts/agent.sh and the reference policy as policy.yaml. */
export async function workspace(): Promise<string> {
  const dir = scratchDir('pe-action-');
  await chmod(dir, 0o755); // the agent must be able to read its working directory
  await mkdir(join(dir, 'scripts'));
  await writeFile(join(dir, 'scripts/agent.sh'), 'echo hello\n');
  await writeFile(join(dir, 'policy.yaml'), await readFile(REFERENCE_POLICY));
  return dir;
}

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

export const ABOUT_TO_START = 'test runner: the run was about to start';

/**
 * A recording runner (as root: no sudo probe) that throws at main's first step towards a run
 * (saving the run id for post) and again just before it starts one (pausing workflow
 * commands). A test of the input checks never starts the boundary, even when the checks let
 * a bad input through: the step then fails with ABOUT_TO_START instead of the expected reason.
 */
export function checksOnlyRunner(
  values: Partial<RawInputs>,
): ActionRunner & { recorded: Recorded } {
  const stop = (): never => {
    throw new Error(ABOUT_TO_START);
  };
  return {
    ...recordingRunner(values, { uid: 0, env: { PATH: process.env['PATH'] ?? '' } }),
    saveState: stop,
    pauseCommands: stop,
  };
}
