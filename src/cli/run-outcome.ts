// How `run` ended, written to `--outcome-file` for the action: its exit code alone cannot tell
// an agent that exited 1 from a boundary that failed (teardown fails after the packet is
// written, so a packet is no sign that the boundary held to the end).
import { readFile, writeFile } from 'node:fs/promises';
import * as z from 'zod';
import { readJsonDocument, type DocumentReading } from '../json-document.js';

export interface RunOutcome {
  readonly exit_code: number;
  /** What failed in the boundary (setup, probes, teardown), or null: it held to the end. */
  readonly boundary_failure: string | null;
  /** What was wrong with the request, when the run refused it before anything started. */
  readonly refused?: readonly string[] | undefined;
}

const RUN_OUTCOME = z.object({
  exit_code: z.number().int(),
  boundary_failure: z.string().nullable(),
  refused: z.array(z.string()).optional(),
});

/** Created, never overwritten (0644: the action reads it as the runner user, sudo aside). */
export async function writeRunOutcome(file: string, outcome: RunOutcome): Promise<void> {
  await writeFile(file, `${JSON.stringify(outcome)}\n`, { mode: 0o644, flag: 'wx' });
}

export async function readRunOutcome(file: string): Promise<DocumentReading<RunOutcome>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
  return readJsonDocument(RUN_OUTCOME, text);
}
