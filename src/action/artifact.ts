// Uploading the Audit Packet as a workflow artifact with @actions/artifact (the Actions
// results service: Twirp calls plus a blob upload). Without the Actions runtime there is
// nowhere to upload to: the packet stays on disk and the caller says so.
import { DefaultArtifactClient } from '@actions/artifact';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Whether this process can reach the Actions results service. */
export function hasActionsRuntime(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env['ACTIONS_RUNTIME_TOKEN'] && env['ACTIONS_RESULTS_URL']);
}

/** Every regular file under `dir`, recursively, symlinks not followed. */
async function filesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

/** Uploads the packet directory as artifact `name`; returns the artifact id. */
export async function uploadPacket(name: string, dir: string): Promise<number> {
  const result = await new DefaultArtifactClient().uploadArtifact(name, await filesUnder(dir), dir);
  if (result.id === undefined) throw new Error(`the artifact service gave no id for ${name}`);
  return result.id;
}
