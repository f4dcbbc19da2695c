// The processes in the agent's network namespace: every process the agent started, whatever
// PID namespace it is in, since none can leave the network namespace.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool } from './command.js';

/** How long a killed process may take to go. */
export const KILL_WAIT_MS = 5_000;

async function namespacePids(ip: string, netns: string): Promise<number[]> {
  const listed = await runTool([ip, 'netns', 'pids', netns]);
  if (listed.code !== 0) return [];
  return listed.stdout
    .split('\n')
    .filter((line) => /^[0-9]+$/.test(line))
    .map(Number);
}

function ownerUid(pid: number): Promise<number | undefined> {
  return readFile(`/proc/${pid}/status`, 'utf8').then(
    (status) => {
      const uid = /^Uid:\s+([0-9]+)/m.exec(status)?.[1];
      return uid === undefined ? undefined : Number(uid);
    },
    () => undefined,
  );
}

/**
 * SIGKILLs them until none is left but `spare` (the launcher this process waits for). The
 * agent's processes go first, so the root launchers above them live to reap them; then the
 * launchers. Killing a launcher first would orphan the agent's init into a zombie.
 */
export async function killNamespaceProcesses(
  ip: string,
  netns: string,
  spare?: number,
): Promise<void> {
  const deadline = Date.now() + KILL_WAIT_MS;
  for (const phase of ['agent', 'launchers'] as const) {
    for (;;) {
      const pids: number[] = [];
      for (const pid of await namespacePids(ip, netns)) {
        if (pid === spare) continue;
        if (phase === 'launchers' || (await ownerUid(pid)) !== 0) pids.push(pid);
      }
      if (pids.length === 0) break;
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
}
