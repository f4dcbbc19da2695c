// The process running a boundary (`pipelock-egress run`), named by its pid and start time so
// that a pid the kernel hands out again later is not taken for it.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunProcess {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot. */
  readonly startTime: string;
}

/** The start time in a /proc/PID/stat line; the command name before it may hold spaces. */
export function startTimeOf(stat: string): string | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

export async function runProcessOf(pid: number): Promise<RunProcess> {
  const startTime = startTimeOf(await readFile(`/proc/${pid}/stat`, 'utf8'));
  if (startTime === undefined) throw new Error(`/proc/${pid}/stat has no start time`);
  return { pid, startTime };
}

export async function isRunning(run: RunProcess): Promise<boolean> {
  return readFile(`/proc/${run.pid}/stat`, 'utf8').then(
    (stat) => startTimeOf(stat) === run.startTime,
    () => false,
  );
}

/**
 * SIGTERM, as an operator's Ctrl-C: the run stops its agent, seals the evidence and tears
 * itself down. Whether it was gone within `waitMs`.
 */
export async function stopRun(run: RunProcess, waitMs: number): Promise<boolean> {
  process.kill(run.pid, 'SIGTERM');
  const giveUpAt = Date.now() + waitMs;
  while (await isRunning(run)) {
    if (Date.now() > giveUpAt) return false;
    await sleep(50);
  }
  return true;
}
