// `pipelock-egress run`: the boundary. Its preflight has landed; the boundary itself has not,
// so after the preflight the command says so instead of running anything.

import { gatherHostFacts, preflightProblems } from '../boundary/preflight.js';
import type { CliIo } from './io.js';

export async function runCommand(_args: readonly string[], io: CliIo): Promise<number> {
  const problems = preflightProblems(await gatherHostFacts());
  if (problems.length > 0) {
    for (const problem of problems) io.err(`pipelock-egress run: preflight: ${problem}\n`);
    io.err(
      `pipelock-egress run: ${problems.length} preflight problem${problems.length === 1 ? '' : 's'}; nothing was created\n`,
    );
    return 1;
  }
  io.err(
    'pipelock-egress run: preflight passed on this machine; not available yet: the agent boundary has not landed in this version, so nothing was run\n',
  );
  return 2;
}
