// pipelock-egress: command dispatch. Each command returns its exit code.

import packageJson from '../../package.json' with { type: 'json' };
import { type CliIo, HelpRequested, isHelpOption, UsageError } from './io.js';
import { cleanupCommand } from './cleanup-command.js';
import { keygenCommand } from './keygen-command.js';
import { policyCommand } from './policy-command.js';
import { proxyCommand } from './proxy-command.js';
import { runCommand } from './run-command.js';
import { USAGE } from './usage.js';
import { verifyCommand } from './verify-command.js';
import { viewCommand } from './view-command.js';

type Command = (args: readonly string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  policy: policyCommand,
  proxy: proxyCommand,
  verify: verifyCommand,
  keygen: keygenCommand,
  run: runCommand,
  cleanup: cleanupCommand,
  view: viewCommand,
};

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === undefined) throw new UsageError('no command given');
    if (command === '-h' || command === '--help' || command === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (command === '-v' || command === '--version') {
      io.out(`pipelock-egress ${packageJson.version}\n`);
      return 0;
    }
    const run = COMMANDS[command];
    if (run === undefined)
      throw new UsageError(
        command.startsWith('-') ? `unknown option "${command}"` : `unknown command "${command}"`,
      );
    // `cleanup --help`, `view --help`: before a command's first argument is taken for its own.
    if (isHelpOption(args[0])) throw new HelpRequested();
    return await run(args, io);
  } catch (error) {
    if (error instanceof HelpRequested) {
      io.out(USAGE);
      return 0;
    }
    if (!(error instanceof UsageError)) throw error;
    io.err(`pipelock-egress: ${error.message}\n\n${USAGE}`);
    return 2;
  }
}
