// The processes in the agent's network namespace: every process the agent started, whatever
// PID namespace it is in, since none can leave the network namespace.
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool } from './command.js';

const KILL_WAIT_MS = 5_000;

async function namespacePids(ip: string, netns: string): Promise<number[]> {
  const listed = await runTool([ip, 'netns', 'pids', netns]);
  if (listed.code !== 0) return [];
  return listed.stdout
    .split('\n')
    .filter((line) => /^[0-9]+$/.test(line))
    .map(Number);
}

/**
 * SIGKILLs them until none is left but `spare`: the launcher this process waits for, which
 * then reaps its child and exits by itself (killing it first would orphan the agent's init,
 * leaving a zombie no one reaps).
 */
export async function killNamespaceProcesses(
  ip: string,
  netns: string,
  spare?: number,
): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  for (;;) {
    const pids = (await namespacePids(ip, netns)).filter((pid) => pid !== spare);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} survived SIGKILL`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(20);
  }
}
