// The seam between the action's logic and the Actions runner, so tests can drive it with
// real INPUT_* variables and runner files, or with a recording double.

import { randomBytes } from 'node:crypto';
import { EOL } from 'node:os';
import * as core from '@actions/core';
import { INPUT_DEFAULTS, INPUT_NAMES, type InputName, type RawInputs } from './input-names.js';

export interface ActionRunner {
  readonly platform: NodeJS.Platform;
  readInputs(): RawInputs;
  setOutput(name: string, value: string | number): void;
  setFailed(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  getState(name: string): string;
  saveState(name: string, value: string): void;
  setSecret(value: string): void;
  addPath(dir: string): void;
  notice(message: string): void;
  /**
   * Stops the runner reading workflow commands (`::set-output`, `::error::`, `::add-mask::`) in
   * the log until the returned function is called: what the agent prints is only text.
   */
  pauseCommands(): () => void;
  /** Appends Markdown to the job summary; false when this runner has none (a local run). */
  appendSummary(markdown: string): Promise<boolean>;
  readonly env: NodeJS.ProcessEnv;
  readonly uid: number;
}

export function actionsRunner(): ActionRunner {
  return {
    platform: process.platform,
    readInputs: () =>
      Object.fromEntries(
        INPUT_NAMES.map((name: InputName) => [
          name,
          // Arguments are taken as written, one per line: only the input's last newline goes.
          core.getInput(name, { trimWhitespace: name !== 'agent-args' }) ||
            (INPUT_DEFAULTS[name] ?? ''),
        ]),
      ) as RawInputs,
    setOutput: (name, value) => core.setOutput(name, value),
    setFailed: (message) => core.setFailed(message),
    info: (message) => core.info(message),
    warning: (message) => core.warning(message),
    getState: (name) => core.getState(name),
    saveState: (name, value) => core.saveState(name, value),
    setSecret: (value) => core.setSecret(value),
    addPath: (dir) => core.addPath(dir),
    notice: (message) => core.notice(message),
    pauseCommands: () => {
      const token = randomBytes(16).toString('hex');
      process.stdout.write(`::stop-commands::${token}${EOL}`);
      // On a line of its own: the runner reads a command only at a line's start, and the
      // agent's last line may have no end (which would keep commands paused for good).
      return () => process.stdout.write(`${EOL}::${token}::${EOL}`);
    },
    appendSummary: async (markdown) => {
      if (!process.env['GITHUB_STEP_SUMMARY']) return false;
      await core.summary.addRaw(markdown).write();
      return true;
    },
    env: process.env,
    uid: process.getuid?.() ?? -1,
  };
}
