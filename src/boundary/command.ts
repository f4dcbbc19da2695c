// Running the system tools the boundary drives: argv only (no shell), output captured, and a
// failure that names the command and carries what it printed.
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
}

/** A step of the boundary that could not be done; the run stops and tears down. */
export class BoundaryError extends Error {}

export function runTool(
  argv: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('runTool: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a tool that must succeed; otherwise a BoundaryError saying what failed and why. */
export async function mustRun(
  what: string,
  argv: readonly string[],
  options: CommandOptions = {},
): Promise<string> {
  const result = await runTool(argv, options).catch((error: unknown) => {
    throw new BoundaryError(`${what}: cannot start ${argv[0] ?? ''}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  if (result.code !== 0) {
    const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-5).join(' | ');
    const status = result.signal === null ? `exit ${result.code}` : `signal ${result.signal}`;
    throw new BoundaryError(
      `${what}: ${argv.join(' ')} failed (${status})${output ? `: ${output}` : ''}`,
    );
  }
  return result.stdout;
}
