// A sudoers drop-in that denies both boundary users everything. no_new_privs already makes a
// setuid sudo inert for the agent; this holds even if a future step forgot it.
import { chmod, rm, stat, writeFile } from 'node:fs/promises';
import { mustRun } from './command.js';

export const SUDOERS_DIR = '/etc/sudoers.d';

export function sudoersDenyText(users: readonly string[]): string {
  return `# pipelock-egress: the boundary's users may not use sudo\n${users.map((user) => `${user} ALL=(ALL:ALL) !ALL\n`).join('')}`;
}

/** The run's drop-in (sudo ignores files whose names contain a dot). */
export function sudoersFile(runId: string): string {
  return `${SUDOERS_DIR}/pipelock-egress-${runId}`;
}

/** Installs and validates the drop-in; undefined when sudo is not installed (nothing to deny). */
export async function installSudoersDeny(
  runId: string,
  users: readonly string[],
): Promise<string | undefined> {
  const isDir = await stat(SUDOERS_DIR).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return undefined;
  const file = sudoersFile(runId);
  await writeFile(file, sudoersDenyText(users), { mode: 0o440, flag: 'wx' });
  await chmod(file, 0o440);
  try {
    await mustRun('validating the sudoers drop-in', ['visudo', '-c', '-q', '-f', file]);
  } catch (error) {
    await rm(file, { force: true });
    throw error;
  }
  return file;
}
