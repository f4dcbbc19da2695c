// Content scanned off the engine's event loop: request bodies and WebSocket messages.
// Scanning is synchronous, and megabytes take a second or more to decode and read: on the main
// thread every other request, tunnel, timeout and the health check would wait for it. Content
// past INLINE_SCAN_BYTES goes to a worker thread with a scanner of its own (the same detectors
// and bound secrets); less is scanned in place, where a thread's round trip would cost more
// than the scan. The thread runs this same module (from the bundle, or from source in the tests).

import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { decodedBodyViews, textViews } from './content-views.js';
import type { Detector } from './detectors.js';
import {
  createSecretScanner,
  UNSCANNABLE,
  type BoundSecret,
  type DlpFinding,
  type Reach,
  type SecretScanner,
  type View,
} from './secret-scan.js';

/** Content up to this size (a body as sent and decoded) is scanned on the event loop (a few ms). */
export const INLINE_SCAN_BYTES = 64 * 1024;

/** What a scanner is made of: plain data, so that a thread can be given it. */
export interface ScannerSetup {
  readonly detectors: readonly Detector[];
  readonly secrets: readonly BoundSecret[];
  readonly patternScanMs: number;
}

/** A text and where it was seen, scanned with its decodings. */
export interface PlacedText {
  readonly text: string;
  readonly where: string;
}

type ScanJob = (
  | {
      readonly sent: Uint8Array;
      /** The body with its Content-Encoding undone; absent when it has none. */
      readonly decoded?: Uint8Array;
    }
  | { readonly texts: readonly PlacedText[] }
) & {
  readonly to: Reach;
  readonly detectors: boolean;
};

interface Waiting {
  readonly job: ScanJob;
  readonly done: (finding: DlpFinding | undefined) => void;
}

type ScanReply = { readonly finding: DlpFinding | undefined } | { readonly error: string };

const THREAD_ROLE = 'pipelock-egress body scan';

/** Why content is not scanned once the engine stops: it is refused (not sent). */
export const ENGINE_STOPPING = 'the engine is stopping';

export class ContentScans {
  private readonly threads = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly queue: Waiting[] = [];
  private closed = false;

  constructor(
    private readonly scanner: SecretScanner,
    private readonly setup: ScannerSetup,
    /** Threads scanning at once; one core is left to the event loop. */
    private readonly maxThreads = Math.max(1, Math.min(4, availableParallelism() - 1)),
  ) {}

  /** The finding in a body (as sent, and decoded when it was encoded), if any. */
  scanBody(
    sent: Buffer,
    decoded: Buffer,
    to: Reach,
    detectors: boolean,
  ): Promise<DlpFinding | undefined> {
    const job = { sent, ...(decoded === sent ? {} : { decoded }), to, detectors };
    return this.scan(job, Math.max(sent.length, decoded.length));
  }

  /** The finding in texts (a WebSocket message, where it joins the one before), if any. */
  scanTexts(
    texts: readonly PlacedText[],
    to: Reach,
    detectors: boolean,
  ): Promise<DlpFinding | undefined> {
    const size = texts.reduce((sum, { text }) => sum + Buffer.byteLength(text), 0);
    return this.scan({ texts, to, detectors }, size);
  }

  private scan(job: ScanJob, size: number): Promise<DlpFinding | undefined> {
    // Small ones too: scanned one by one, what waits for its scan (megabytes of WebSocket
    // messages) could outlast the engine's shutdown, and their pair's outcome miss the evidence.
    if (this.closed) return Promise.resolve(failed(ENGINE_STOPPING, job));
    if (size <= INLINE_SCAN_BYTES)
      return Promise.resolve(this.scanner.scanContent(jobViews(job), job.to, job.detectors));
    return new Promise((done) => {
      this.queue.push({ job, done });
      this.dispatch();
    });
  }

  /** Stops the threads; a scan still waiting or running, or asked for later, is refused as unscannable. */
  async close(): Promise<void> {
    this.closed = true;
    this.failQueued(ENGINE_STOPPING);
    await Promise.all([...this.threads].map((thread) => thread.terminate()));
  }

  private failQueued(why: string): void {
    for (const waiting of this.queue.splice(0)) waiting.done(failed(why, waiting.job));
  }

  private dispatch(): void {
    if (this.closed) return this.failQueued(ENGINE_STOPPING);
    if (this.queue.length === 0) return;
    let thread = this.idle.pop();
    if (thread === undefined && this.threads.size < this.maxThreads) {
      try {
        thread = this.start();
      } catch (error) {
        return this.failQueued(`no scanning thread could be started: ${(error as Error).message}`);
      }
    }
    if (thread === undefined) return;
    this.scanOn(thread, this.queue.shift() as Waiting);
  }

  private scanOn(thread: Worker, { job, done }: Waiting): void {
    // A thread that dies mid-scan (out of memory, a crash) leaves a body that was not scanned:
    // it is refused, and the next scan gets a new thread.
    const lost = (error: Error) =>
      finish(failed(`the scanning thread failed: ${error.message}`, job));
    // Stopped by close(): the scan is refused for that reason, not as a thread that failed.
    const exited = (code: number) =>
      this.closed
        ? finish(failed(ENGINE_STOPPING, job))
        : lost(new Error(`it exited with code ${code}`));
    const finish = (finding: DlpFinding | undefined, healthy = false) => {
      thread.off('message', replied).off('error', lost).off('exit', exited);
      done(finding);
      if (healthy && !this.closed) this.idle.push(thread);
      else {
        this.threads.delete(thread);
        void thread.terminate();
      }
      this.dispatch();
    };
    const replied = (reply: ScanReply) =>
      'error' in reply
        ? finish(failed(`the scanning thread failed: ${reply.error}`, job), true)
        : finish(reply.finding, true);
    thread.on('message', replied).on('error', lost).on('exit', exited);
    try {
      thread.postMessage(job);
    } catch (error) {
      finish(
        failed(
          `the content could not be given to the scanning thread: ${(error as Error).message}`,
          job,
        ),
        true,
      );
    }
  }

  private start(): Worker {
    const self = import.meta.url;
    const options = { workerData: { role: THREAD_ROLE, setup: this.setup } };
    // From source (the tests), the thread loads TypeScript through the loader they run under.
    const loader = self.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : undefined;
    const thread = loader
      ? new Worker(
          `import(${JSON.stringify(loader)}).then(({ register }) => { register(); return import(${JSON.stringify(self)}); })`,
          { ...options, eval: true },
        )
      : new Worker(new URL(self), options);
    // An idle thread does not keep the engine's process alive.
    thread.unref();
    this.threads.add(thread);
    // A thread that ends while idle is dropped (a scan given to it would wait for ever); one
    // that fails while scanning refuses that body (scanOn). An error event with no listener
    // would end the engine.
    thread.on('error', () => undefined);
    thread.once('exit', () => {
      this.threads.delete(thread);
      const idle = this.idle.indexOf(thread);
      if (idle >= 0) this.idle.splice(idle, 1);
    });
    return thread;
  }
}

function failed(why: string, job: ScanJob): DlpFinding {
  const where = 'texts' in job ? (job.texts[0]?.where ?? 'message') : 'body';
  return { detector: UNSCANNABLE, where, failure: why };
}

const bytes = (array: Uint8Array): Buffer =>
  Buffer.from(array.buffer, array.byteOffset, array.byteLength);

function jobViews(job: ScanJob): View[] {
  if ('texts' in job) return job.texts.flatMap(({ text, where }) => textViews(text, where));
  const sent = bytes(job.sent);
  return decodedBodyViews(sent, job.decoded ? bytes(job.decoded) : sent);
}

function serveScans(setup: ScannerSetup): void {
  const scanner = createSecretScanner(setup.detectors, setup.secrets, setup.patternScanMs);
  parentPort?.on('message', (job: ScanJob) => {
    let reply: ScanReply;
    try {
      reply = { finding: scanner.scanContent(jobViews(job), job.to, job.detectors) };
    } catch (error) {
      reply = { error: error instanceof Error ? error.message : String(error) };
    }
    parentPort?.postMessage(reply);
  });
}

const data = workerData as { role?: unknown; setup?: ScannerSetup } | null;
if (!isMainThread && data?.role === THREAD_ROLE && data.setup) serveScans(data.setup);
