// The post step: undo whatever a killed main step left behind, from main's saved state.

import type { ActionRunner } from './runner.js';
import { STATE_KEYS } from './state.js';

export async function runPost(runner: ActionRunner): Promise<void> {
  const runId = runner.getState(STATE_KEYS.boundaryRunId);
  if (runId === '') {
    runner.info('post: main set up no boundary; nothing to clean up');
    return;
  }
  runner.setFailed(
    `post: cleanup of boundary ${runId} is not available yet in this version; check the runner for leftover users and namespaces`,
  );
}
