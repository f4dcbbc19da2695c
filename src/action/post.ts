// The post step: finish whatever a killed main step left behind (users, namespace, firewall,
// processes, the run directory), from main's saved state. Harmless after a clean run.

import { rm } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { cliBundle, inheritOutput, passwordlessSudo } from './privileged.js';
import type { ActionRunner } from './runner.js';
import { STATE_KEYS, TEMP_DIR_NAME } from './state.js';

export async function runPost(runner: ActionRunner): Promise<void> {
  try {
    const temp = runner.getState(STATE_KEYS.tempDir);
    if (isAbsolute(temp) && TEMP_DIR_NAME.test(basename(temp)))
      await rm(temp, { recursive: true, force: true });
    const runId = runner.getState(STATE_KEYS.boundaryRunId);
    if (runId === '') {
      runner.info('post: main set up no boundary; nothing to clean up');
      return;
    }
    const asRoot = runner.getState(STATE_KEYS.asRoot) === 'true' || runner.uid === 0;
    if (!asRoot && !(await passwordlessSudo())) {
      throw new Error(
        `post: cannot become root to clean up boundary ${runId} (no passwordless sudo)`,
      );
    }
    const argv = [
      ...(asRoot ? [] : ['sudo', '-n', '--']),
      process.execPath,
      await cliBundle(),
      'cleanup',
      runId,
    ];
    const code = await inheritOutput(argv);
    if (code !== 0)
      throw new Error(
        `post: cleanup of boundary ${runId} failed (exit ${code}); see the log above`,
      );
  } catch (error) {
    runner.setFailed(error instanceof Error ? error.message : String(error));
  }
}
