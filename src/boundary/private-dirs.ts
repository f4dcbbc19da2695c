// The directories the agent gets a fresh tmpfs of: those the host and other runs share, where
// a file left behind outlives the run (temporary files, shared memory) or where host daemons
// bind their sockets (/run), before the run or during it. A restarted daemon re-creates its
// socket, which drops a mask mounted over the old one; an empty directory has nothing to
// unmask. What the run itself needs in one (its working directory under /tmp, its script and
// HOME under /run) is bound back at the same place. Pure.

import { join } from 'node:path';

export interface PrivateDir {
  readonly path: string;
  /** The tmpfs root's mode, as octal text. */
  readonly mode: string;
  /** Where it is put together before it is moved into place: `path` itself when nothing is kept. */
  readonly stage: string;
  /** Paths strictly under `path`, none inside another, bound back at the same place. */
  readonly keep: readonly string[];
}

/** Where host daemons bind their sockets: the run may keep only its own files there. */
export const PRIVATE_RUN = '/run';

/** In this order: the stages are under /run, which is moved into place last. */
const PRIVATE_DIRS = [
  { path: '/dev/shm', mode: '1777' },
  { path: '/var/tmp', mode: '1777' },
  { path: '/tmp', mode: '1777' },
  { path: PRIVATE_RUN, mode: '0755' },
] as const;

export const PRIVATE_DIR_PATHS: readonly string[] = PRIVATE_DIRS.map(({ path }) => path);

export function isInsideDir(dir: string, path: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

export interface PrivateDirsInput {
  /** An empty directory per private directory, under `stagesDir`, named by `stageName`. */
  readonly stagesDir: string;
  /** The run's own directories under /run. */
  readonly runFiles: readonly string[];
  /** What the agent must see wherever it is: its working directory, its writable paths. */
  readonly visible: readonly string[];
}

function stageName(path: string): string {
  return path.slice(1).replaceAll('/', '-');
}

export function agentPrivateDirs(input: PrivateDirsInput): PrivateDir[] {
  return PRIVATE_DIRS.map(({ path, mode }) => {
    const wanted = [...(path === PRIVATE_RUN ? input.runFiles : []), ...input.visible];
    const keep = outermost(wanted.filter((kept) => kept !== path && isInsideDir(path, kept)));
    const stage = keep.length === 0 ? path : join(input.stagesDir, stageName(path));
    return { path, mode, stage, keep };
  });
}

/** Whether the agent cannot see `path` at all: in a private directory, and not kept. */
export function hiddenByPrivateDirs(dirs: readonly PrivateDir[], path: string): boolean {
  return dirs.some(
    (dir) => isInsideDir(dir.path, path) && !dir.keep.some((kept) => isInsideDir(kept, path)),
  );
}

/**
 * The private directory the agent could not be given `path` in, if any: a private directory
 * itself (it would share it whole with the host), or anything under /run.
 */
export function unkeptPrivateDir(path: string): string | undefined {
  return PRIVATE_DIR_PATHS.find(
    (dir) => dir === path || (dir === PRIVATE_RUN && isInsideDir(dir, path)),
  );
}

function outermost(paths: readonly string[]): string[] {
  const unique = [...new Set(paths)];
  return unique.filter(
    (path) => !unique.some((other) => other !== path && isInsideDir(other, path)),
  );
}
