// Where `verify --output` may write its report, checked before anything is verified: never over
// or into what is being verified (the chain, a key, the policy hash, the evidence directory or
// packet; a packet's own verification report excepted), and not onto a directory.
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { PACKET_FILES } from '../packet/packet-json.js';

/** Why the report cannot go to `output`, or undefined; `inputs` are the paths verify reads. */
export async function reportOutputProblem(
  output: string,
  inputs: readonly string[],
): Promise<string | undefined> {
  const target = await resolvedPath(output);
  if ((await stat(target).catch(() => undefined))?.isDirectory())
    return `--output ${output} is a directory; give the report's file name (…/${PACKET_FILES.verifier})`;
  for (const input of inputs) {
    const source = await realpath(input).catch(() => undefined);
    if (source === undefined) continue;
    // A packet's verification report is what the reference workflow's verify step replaces.
    const within = target.startsWith(source + sep) && basename(target) !== PACKET_FILES.verifier;
    if (target === source || within) {
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
