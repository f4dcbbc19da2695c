// A policy's own patterns run on JavaScript's backtracking regular expressions: one written
// without care (`[a-z]+secret`, `(a+)+b`) can take hours on a hostile text, and the engine's
// one thread would wait. Run under node:vm's timeout, such a match is stopped (V8 interrupts
// the regular expression) and reported, so the request is refused as one that cannot be
// scanned rather than holding up every other.
import { createContext, Script } from 'node:vm';

let context: { job?: () => unknown } | undefined;
const RUN_JOB = new Script('job()');

/** `run()`, stopped after `limitMs` with an error naming `what`. */
export function withinTime<T>(run: () => T, limitMs: number, what: () => string): T {
  context ??= createContext({});
  context.job = run;
  try {
    return RUN_JOB.runInContext(context, { timeout: limitMs }) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT')
      throw new Error(`${what()} ran longer than ${limitMs} ms`, { cause: error });
    throw error;
  } finally {
    delete context.job;
  }
}
