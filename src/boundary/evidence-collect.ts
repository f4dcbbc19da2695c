// Copying the engine's evidence out of the run directory before teardown removes it: in the
// run itself once the engine has sealed, or when a killed run is recovered. Safe to repeat
// after being killed part way: the copies are made beside their places and moved in last.
import { constants } from 'node:fs';
import { copyFile, lchown, lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathExists } from '../path-exists.js';

export interface EvidenceCollection {
  readonly runId: string;
  readonly evidenceDir: string;
  readonly engineLog: string;
  /** Checked empty before the run started. */
  readonly into: string;
  readonly engineLogCopy: string;
  /** Who the copies belong to (whoever ran `run` through sudo); null: root keeps them. */
  readonly owner: { readonly uid: number; readonly gid: number } | null;
}

/**
 * Anything at `into` or `engineLogCopy` before the copies are moved in was put there during
 * the run (nothing was there before), so it is moved aside, never mixed in with the engine's
 * files. Returns a warning when that happened.
 */
export async function collectEvidence(collection: EvidenceCollection): Promise<string | undefined> {
  const { into, engineLogCopy, runId } = collection;
  const staging = `${into}.collecting-${runId}`;
  const logStaging = `${engineLogCopy}.collecting-${runId}`;
  // Left by a collection killed part way: copied again from the start.
  await rm(staging, { recursive: true, force: true });
  await rm(logStaging, { force: true });
  await mkdir(staging, { mode: 0o755 });
  const copies = [dirname(into), staging, logStaging];
  // New files only: nothing already there (a symlink, a FIFO) is written through.
  for (const name of await readdir(collection.evidenceDir)) {
    await copyFile(
      join(collection.evidenceDir, name),
      join(staging, name),
      constants.COPYFILE_EXCL,
    );
    copies.push(join(staging, name));
  }
  await copyFile(collection.engineLog, logStaging, constants.COPYFILE_EXCL);
  // Also when the action's post step collects a killed run's evidence: a later step of the
  // job, running as the runner user, can read it.
  const { owner } = collection;
  if (owner !== null) for (const copy of copies) await lchown(copy, owner.uid, owner.gid);

  const planted = [await setAside(into, runId), await setAside(engineLogCopy, runId)].filter(
    (moved) => moved !== undefined,
  );
  await rename(logStaging, engineLogCopy);
  await rename(staging, into);
  return planted.length === 0
    ? undefined
    : `${planted.join('; ')}: not written by the engine, so kept apart from its evidence`;
}

/** Moves what stands at `path` to a free name beside it; an empty directory is just removed. */
async function setAside(path: string, runId: string): Promise<string | undefined> {
  const found = await lstat(path).catch(() => undefined);
  if (found === undefined) return undefined;
  if (found.isDirectory() && (await readdir(path)).length === 0) {
    await rmdir(path);
    return undefined;
  }
  let aside = `${path}.during-${runId}`;
  for (let n = 2; await pathExists(aside); n++) aside = `${path}.during-${runId}-${n}`;
  await rename(path, aside);
  return `${path} appeared during the run; moved to ${aside}`;
}
