// Policy errors are values: what is wrong, where, and what is expected.
import { showInvisible } from '../invisible.js';

export type PolicyErrorCode =
  | 'file_too_large'
  | 'not_utf8'
  | 'disputed_line_break'
  | 'disputed_number'
  | 'yaml_syntax'
  | 'too_deeply_nested'
  | 'too_many_errors'
  | 'duplicate_key'
  | 'multiple_documents'
  | 'alias_not_allowed'
  | 'tag_not_allowed'
  | 'directive_not_allowed'
  | 'unknown_key'
  | 'missing_key'
  | 'wrong_type'
  | 'invalid_value'
  | 'unsupported_version'
  | 'bad_destination'
  | 'bad_method'
  | 'bad_path'
  | 'bad_port'
  | 'bad_pattern'
  | 'bad_env_name'
  | 'empty_list'
  | 'duplicate_rule'
  | 'conflict'
  | 'allows_everything';

export interface PolicyError {
  readonly code: PolicyErrorCode;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Key path such as `egress[0].methods[1]`; empty for file-level errors. */
  readonly path: string;
  readonly message: string;
}

export function formatPolicyError(error: PolicyError): string {
  const where = `${error.file}:${error.line}:${error.col}`;
  const line =
    error.path === '' ? `${where}: ${error.message}` : `${where}: ${error.path}: ${error.message}`;
  return showInvisible(line);
}

export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** The closest candidate within a small edit distance, for "did you mean" hints. */
export function closestMatch(input: string, candidates: readonly string[]): string | undefined {
  const wanted = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(wanted, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
