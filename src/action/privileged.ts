// Starting the CLI as root from the action: directly when the action already runs as root,
// else through passwordless sudo. Main runs `run` this way, post runs `cleanup`.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRegularFile } from '../regular-file.js';

export async function passwordlessSudo(): Promise<boolean> {
  return new Promise((done) => {
    const probe = spawn('sudo', ['-n', 'true'], { stdio: 'ignore' });
    probe.on('error', () => done(false));
    probe.on('exit', (code) => done(code === 0));
  });
}

/** dist/cli.js beside this bundle (dist/main.js), or the built one when running from src/. */
export async function cliBundle(): Promise<string> {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'cli.js'), join(here, '..', '..', 'dist', 'cli.js')]) {
    if (await isRegularFile(candidate)) return candidate;
  }
  throw new Error(`the CLI bundle (dist/cli.js) is not next to ${here}: run npm run build`);
}

/**
 * Runs argv with its output in the step log; resolves to its exit code. A cancelled workflow
 * signals this process: the signal is passed on (sudo relays it to `run`, which seals the
 * evidence and tears down), and this process waits for that instead of dying first.
 */
export function inheritOutput(argv: readonly string[]): Promise<number | null> {
  const [command, ...args] = argv;
  return new Promise((done, fail) => {
    const child = spawn(command ?? '', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const settle = (): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.on('error', (error) => {
      settle();
      fail(error);
    });
    child.on('exit', (code, signal) => {
      settle();
      done(code ?? (signal === null ? null : 128 + constants.signals[signal]));
    });
  });
}
