// Child processes for the benchmark: start one and read its first JSON line, run a tool to
// completion and keep its output.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Started<T> {
  readonly child: ChildProcess;
  readonly ready: T;
}

export function startWithReadyLine<T>(
  command: string,
  args: readonly string[],
): Promise<Started<T>> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = createInterface({ input: child.stdout });
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`${command} ${args.join(' ')} exited with ${code} before it was ready`)),
    );
    lines.once('line', (line) => {
      child.removeAllListeners('exit');
      resolve({ child, ready: JSON.parse(line) as T });
    });
  });
}

export function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** One curl transfer, body discarded; returns what `-w FORMAT` printed. */
export function curlWriteOut(format: string, args: readonly string[]): Promise<string> {
  return run('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', format, ...args]);
}

export function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`${command} exited with ${code}: ${stderr.trim()}`)),
    );
  });
}
