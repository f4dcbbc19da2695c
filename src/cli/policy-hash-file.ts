// The policy hash a reviewer gives `verify` and `view` (--policy-hash FILE): the SHA-256 of the
// policy file's bytes, as policy-hash.txt states it or as sha256sum prints it. Read strictly: a
// file that holds no such hash is a usage problem, never a policy mismatch.
import { showInvisible } from '../invisible.js';
import { InputError, readInputText } from './input-file.js';
import type { CliIo } from './io.js';

const EXPECTED =
  "expected the policy's SHA-256 as 64 hex digits alone on one line (as policy-hash.txt holds it, with or without sha256:), or the line sha256sum POLICY prints";
const SHA256_PREFIX = 'sha256:';

export type PolicyHashReading =
  { readonly ok: true; readonly hash: string } | { readonly ok: false; readonly problem: string };

/** The hash in `file`, in lower case as receipts carry it. */
export async function loadPolicyHash(file: string, io: CliIo): Promise<string> {
  const read = readPolicyHash(await readInputText(file, 'policy hash', io));
  if (!read.ok) throw new InputError(`policy hash file ${file} ${read.problem}; ${EXPECTED}`);
  return read.hash;
}

/** `HASH` or `sha256:HASH`, or sha256sum's `HASH  NAME` (`HASH *NAME` in binary mode), on one line. */
export function readPolicyHash(text: string): PolicyHashReading {
  const line = text.replace(/\r?\n$/, '');
  if (line === '') return refused('is empty');
  // The policy itself given by mistake: say so, rather than quote it.
  const lines = line.split('\n').length;
  if (lines > 1) return refused(`holds ${lines} lines, not one hash`);
  // Pipelock's receipts may write the hash so; judging compares it without the prefix.
  if (line.startsWith(SHA256_PREFIX)) {
    const hash = line.slice(SHA256_PREFIX.length);
    return /^[0-9a-f]{64}$/i.test(hash)
      ? { ok: true, hash: hash.toLowerCase() }
      : refused(`holds "${SHA256_PREFIX}" and then no 64 hex digits`);
  }
  const digits = /^[0-9a-f]*/i.exec(line)?.[0].length ?? 0;
  const rest = line.slice(digits);
  if (digits === 64 && (rest === '' || /^ [ *]./.test(rest)))
    return { ok: true, hash: line.slice(0, 64).toLowerCase() };
  if (digits > 0 && digits !== 64 && (rest === '' || rest.startsWith(' ')))
    return refused(`holds ${digits} hex digits where a SHA-256 has 64`);
  const found = `"${showInvisible(String.fromCodePoint(rest.codePointAt(0) ?? 0))}"`;
  if (digits === 64)
    return refused(
      `has ${found} after the hash (column 65), where sha256sum writes two spaces (or " *") and the file name`,
    );
  return refused(`has ${found} at column ${digits + 1}, not a hex digit`);
}

function refused(problem: string): PolicyHashReading {
  return { ok: false, problem };
}
