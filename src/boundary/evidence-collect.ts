// Copying the engine's evidence out of the run directory before teardown removes it: in the
// run itself once the engine has sealed, or when a killed run is recovered.
import { constants } from 'node:fs';
import { copyFile, lchown, mkdir, readdir, rename, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

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
 * Anything in `into` now was put there during the run (it was not there before), so it is
 * moved aside, never mixed in with the engine's files. Returns a warning when that happened.
 */
export async function collectEvidence(collection: EvidenceCollection): Promise<string | undefined> {
  const { into } = collection;
  const planted = await readdir(into).catch(() => undefined);
  let warning: string | undefined;
  if (planted !== undefined && planted.length > 0) {
    const aside = `${into}.during-${collection.runId}`;
    await rename(into, aside);
    warning = `${into} filled up during the run (${planted.length} entries, not written by the engine); moved to ${aside}`;
  } else if (planted !== undefined) {
    await rmdir(into); // made by a collection killed before it copied anything
  }
  await mkdir(into, { mode: 0o755 });
  const copies = [into, collection.engineLogCopy];
  // New files only: nothing already there (a symlink, a FIFO) is written through.
  for (const name of await readdir(collection.evidenceDir)) {
    await copyFile(join(collection.evidenceDir, name), join(into, name), constants.COPYFILE_EXCL);
    copies.push(join(into, name));
  }
  await copyFile(collection.engineLog, collection.engineLogCopy, constants.COPYFILE_EXCL);
  // Also when the action's post step collects a killed run's evidence: a later step of the
  // job, running as the runner user, can read it.
  const { owner } = collection;
  if (owner !== null) for (const copy of copies) await lchown(copy, owner.uid, owner.gid);
  return warning;
}
