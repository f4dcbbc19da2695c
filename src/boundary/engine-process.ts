// The engine as its own process: the bundled CLI's `proxy` command, run as the host user with
// no capabilities, serving the listening socket opened inside the agent's namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Server } from 'node:net';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { BoundaryError } from './command.js';
import { LogBudget } from './log-budget.js';
import type { ListeningHandle } from './listener.js';
import { withoutPrivileges } from './setpriv.js';

export interface EngineLaunch {
  readonly setpriv: string;
  readonly node: string;
  readonly cli: string;
  readonly uid: number;
  readonly gid: number;
  /** `proxy` options after the listener: policy, evidence dir, key, pins, CA. */
  readonly proxyArgs: readonly string[];
  /** The engine's whole environment (no secret goes there). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Bound secrets the engine must recognise: sent over its IPC channel, never on a command
   * line nor in its environment, where a name such as NODE_OPTIONS or LD_PRELOAD would be read
   * by the engine's own runtime.
   */
  readonly secretValues: Readonly<Record<string, string>>;
  readonly logFile: string;
}

export interface EngineReady {
  readonly url: string;
  readonly caCert: string | null;
  readonly signerKey: string;
}

export interface EngineSealed {
  readonly receipts: number;
  readonly finalSeq: number;
  /** The engine's log could not be written to the end (the evidence is whole). */
  readonly logError?: string;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
/** The log's pipe closes when the engine exits; this only bounds the wait if it does not. */
const LOG_DRAIN_MS = 5_000;

export class EngineProcess {
  private readonly lines: AsyncIterator<string>;

  /** Settles once the engine's stderr has ended and all of it is in the log file. */
  private readonly logWritten: Promise<unknown>;
  /** Why the log stopped being written, when it did. */
  private logError: string | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly logFile: string,
    /** Settles once the bound secrets are on the engine's IPC channel (its first message). */
    private readonly secretsSent: Promise<void>,
  ) {
    if (child.stdout === null || child.stderr === null)
      throw new Error('engine output is not piped');
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const budget = new LogBudget();
    const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
    this.logWritten = once(log, 'close').catch(() => undefined);
    const kept = new Transform({
      transform: (chunk: Buffer, _encoding, done) => done(null, budget.take(chunk)),
      flush: (done) => done(null, budget.finish()),
    });
    // A log that cannot be written (a full disk) must not stop the engine: its stderr goes on
    // being read, and dropped, so the engine never blocks on a full pipe.
    log.on('error', (error) => {
      this.logError ??= error.message;
      kept.resume();
    });
    child.stderr.pipe(kept).pipe(log);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts the engine; it loads while the namespace is made, then waits for its listener. */
  static spawn(launch: EngineLaunch): EngineProcess {
    const child = spawn(
      launch.setpriv,
      [
        ...withoutPrivileges(launch.uid, launch.gid),
        '--',
        launch.node,
        launch.cli,
        'proxy',
        '--listen-inherited',
        ...launch.proxyArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...launch.env } },
    );
    // Sent at once: the engine reads it while it loads, before it waits for its listener.
    const secretsSent = new Promise<void>((resolve, reject) =>
      child.send({ type: 'secrets', values: launch.secretValues }, (error) =>
        error
          ? reject(new BoundaryError(`passing the bound secrets failed: ${error.message}`))
          : resolve(),
      ),
    );
    secretsSent.catch(() => undefined);
    return new EngineProcess(child, launch.logFile, secretsSent);
  }

  /** Hands over the listening socket and waits for the ready line. */
  async serve(listener: ListeningHandle): Promise<EngineReady> {
    const child = this.child;
    const exited = new Promise<never>((_, reject) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        reject(
          new BoundaryError(`the engine exited before it was ready (${signal ?? `exit ${code}`})`),
        );
      if (child.exitCode !== null || child.signalCode !== null)
        onExit(child.exitCode, child.signalCode);
      else child.once('exit', onExit);
    });
    exited.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new BoundaryError(
              `the engine did not report ready within ${READY_TIMEOUT_MS / 1000} s`,
            ),
          ),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.spawned(), exited, timeout]);
      await Promise.race([this.secretsSent, exited, timeout]);
      await new Promise<void>((resolve, reject) =>
        // Node's typings name only Socket and Server; a bare handle travels as its net.Native.
        child.send({ type: 'listener' }, listener as unknown as Server, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
      const line = await Promise.race([this.nextLine(), exited, timeout]);
      const ready = JSON.parse(line ?? '') as {
        event?: string;
        url?: string;
        ca_cert?: string | null;
        signer_key?: string;
      };
      if (
        ready.event !== 'listening' ||
        typeof ready.url !== 'string' ||
        typeof ready.signer_key !== 'string'
      ) {
        throw new BoundaryError(`the engine's ready line is not what it should be: ${line ?? ''}`);
      }
      return { url: ready.url, caCert: ready.ca_cert ?? null, signerKey: ready.signer_key };
    } catch (error) {
      child.kill('SIGKILL');
      const reason =
        error instanceof BoundaryError
          ? error.message
          : `handing the listener to the engine failed: ${(error as Error).message}`;
      const said = await this.lastWords();
      throw new BoundaryError(said === '' ? reason : `${reason}; the engine said: ${said}`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
      listener.close();
    }
  }

  /** The end of the engine's log, once its stderr is drained (the log goes with the run dir). */
  private async lastWords(): Promise<string> {
    await Promise.race([this.logWritten, sleep(1_000)]);
    const log = await readFile(this.logFile, 'utf8').catch(() => '');
    return log.trim().split('\n').slice(-5).join(' | ');
  }

  private spawned(): Promise<void> {
    if (this.child.pid !== undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.child.once('spawn', resolve);
      this.child.once('error', (error) =>
        reject(new BoundaryError(`starting the engine: ${error.message}`, { cause: error })),
      );
    });
  }

  private async nextLine(): Promise<string | undefined> {
    const next = await this.lines.next();
    return next.done === true ? undefined : next.value;
  }

  /** SIGTERM: the engine seals its evidence and exits 0, reporting what it sealed. */
  async stop(): Promise<EngineSealed> {
    const exit = new Promise<number | null>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        resolve(this.child.exitCode);
      else this.child.once('exit', (code) => resolve(code));
    });
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    let sealedLine: string | undefined;
    for (let line = await this.nextLine(); line !== undefined; line = await this.nextLine()) {
      if (line.includes('"event":"sealed"')) sealedLine = line;
    }
    const code = await exit;
    clearTimeout(killer);
    // The log is copied into the Audit Packet next: its last lines must be in the file.
    await Promise.race([this.logWritten, sleep(LOG_DRAIN_MS)]);
    if (code !== 0 || sealedLine === undefined) {
      throw new BoundaryError(
        `the engine did not seal its evidence (exit ${code}); the evidence is incomplete`,
      );
    }
    const sealed = JSON.parse(sealedLine) as { receipts: number; final_seq: number };
    return {
      receipts: sealed.receipts,
      finalSeq: sealed.final_seq,
      ...(this.logError === undefined ? {} : { logError: this.logError }),
    };
  }
}
