// Where `verify --output` may write its report, checked before anything is verified: never over
// or into what is being verified (the chain, a key, the policy hash, the evidence directory or
// packet; a packet's own verification report excepted), and not onto a directory.
import { lstat, realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { PACKET_FILES } from '../packet/packet-json.js';

/**
 * Why the report cannot go to `output`, or undefined; `inputs` are the paths verify reads,
 * `packet` the packet directory among them (with --packet).
 */
export async function reportOutputProblem(
  output: string,
  inputs: readonly string[],
  packet?: string,
): Promise<string | undefined> {
  const link = await lstat(output).catch(() => undefined);
  if (link?.isSymbolicLink() && (await stat(output).catch(() => undefined)) === undefined)
    return `--output ${output} is a symbolic link to nothing, which the write would create wherever it points; name the report's file itself`;
  const target = await resolvedPath(output);
  if ((await stat(target).catch(() => undefined))?.isDirectory())
    return `--output ${output} is a directory; give the report's file name (…/${PACKET_FILES.verifier})`;
  // The reference workflow's verify step writes the packet's own report again.
  const packetDir =
    packet === undefined ? undefined : await realpath(packet).catch(() => undefined);
  if (packetDir !== undefined && target === join(packetDir, PACKET_FILES.verifier))
    return undefined;
  for (const input of inputs) {
    const source = await realpath(input).catch(() => undefined);
    if (source === undefined) continue;
    if (target === source || target.startsWith(source + sep)) {
      return `--output ${output} would write ${target === source ? 'over' : 'into'} ${input}, which is being verified; write the report elsewhere`;
    }
  }
  return undefined;
}

/** The path with symlinks resolved as far as it exists (the rest is made by the write). */
async function resolvedPath(path: string): Promise<string> {
  const absolute = resolve(path);
  for (let existing = absolute; ; existing = dirname(existing)) {
    const real = await realpath(existing).catch(() => undefined);
    if (real !== undefined) return join(real, relative(existing, absolute));
    if (dirname(existing) === existing) return absolute;
  }
}
