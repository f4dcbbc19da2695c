// Policy file bytes → a validated Policy, or every error found, each with file:line:col.

import {
  Document,
  isAlias,
  isMap,
  isNode,
  isScalar,
  LineCounter,
  Composer,
  Parser,
  visit,
  type Node,
} from 'yaml';
import type { CST } from 'yaml';
import type * as z from 'zod';
import { closestMatch, formatKeyPath, type PolicyError, type PolicyErrorCode } from './errors.js';
import { KNOWN_KEYS, policySchema, type PolicyDocument } from './schema.js';
import { firstInvalidUtf8Offset } from './utf8.js';
import { policyHash } from './hash.js';
import { tooDeepFlowOffset } from './flow-depth.js';

export const MAX_POLICY_BYTES = 1024 * 1024;

export type EgressRule = PolicyDocument['egress'][number] & {
  /** Position in `egress`, and the line of its `destination`, for messages. */
  readonly index: number;
  readonly line: number;
};

export interface Policy extends Omit<PolicyDocument, 'egress'> {
  readonly egress: readonly EgressRule[];
  readonly file: string;
  /** Lowercase hex SHA-256 of the file's bytes. */
  readonly hash: string;
}

export type PolicyResult =
  | { ok: true; policy: Policy }
  | {
      ok: false;
      /** The first MAX_LISTED_ERRORS, then one that counts the rest. */
      errors: PolicyError[];
      /** How many were found. */
      total: number;
    };

/** More would bury the first under thousands of lines (a flood of commas makes a million). */
export const MAX_LISTED_ERRORS = 50;

type Parsed = { ok: true; policy: Policy } | { ok: false; errors: PolicyError[] };

export function parsePolicy(bytes: Uint8Array, file: string): PolicyResult {
  let parsed: Parsed;
  try {
    parsed = parseAll(bytes, file);
  } catch (error) {
    if (!isStackOverflow(error)) throw error;
    parsed = { ok: false, errors: [tooDeep(file, { line: 1, col: 1 })] };
  }
  if (parsed.ok) return parsed;
  const { errors } = parsed;
  const listed = errors.slice(0, MAX_LISTED_ERRORS);
  const next = errors[MAX_LISTED_ERRORS];
  if (next !== undefined) {
    listed.push({
      ...next,
      code: 'too_many_errors',
      path: '',
      message: `${errors.length - MAX_LISTED_ERRORS} more errors from here on are not listed; fix the first ones and check again`,
    });
  }
  return { ok: false, errors: listed, total: errors.length };
}

function parseAll(bytes: Uint8Array, file: string): Parsed {
  const at = (
    code: PolicyErrorCode,
    line: number,
    col: number,
    message: string,
    path = '',
  ): Parsed => ({
    ok: false,
    errors: [{ code, file, line, col, path, message }],
  });
  if (bytes.length > MAX_POLICY_BYTES) {
    return at(
      'file_too_large',
      1,
      1,
      `the file has more than ${MAX_POLICY_BYTES} bytes; a policy may have at most ${MAX_POLICY_BYTES}`,
    );
  }
  const invalidAt = firstInvalidUtf8Offset(bytes);
  if (invalidAt >= 0) {
    const { line, col } = bytePosition(bytes, invalidAt);
    return at(
      'not_utf8',
      line,
      col,
      `byte 0x${(bytes[invalidAt] ?? 0).toString(16).padStart(2, '0')} is not valid UTF-8; save the file as UTF-8`,
    );
  }
  const text = new TextDecoder('utf-8', { ignoreBOM: false }).decode(bytes);
  const breakAt = text.search(DISPUTED_LINE_BREAK);
  if (breakAt >= 0) {
    const { line, col } = textPosition(text, breakAt);
    return at('disputed_line_break', line, col, disputedLineBreakMessage(text.charAt(breakAt)));
  }
  const deepAt = tooDeepFlowOffset(text);
  if (deepAt !== undefined) {
    const { line, col } = textPosition(text, deepAt);
    return { ok: false, errors: [tooDeep(file, { line, col })] };
  }
  const lineCounter = new LineCounter();
  // Parsed once: the tokens show directives, and are composed into the documents.
  const tokens = [...new Parser(lineCounter.addNewLine).parse(text)];
  const docs = withoutStackTraces(() => [
    ...new Composer({ uniqueKeys: true, strict: true }).compose(tokens),
  ]);
  const position = (offset: number) => lineCounter.linePos(offset);
  const directive = firstDirective(tokens);
  if (directive !== undefined) {
    const { line, col } = position(directive.offset);
    return at(
      'directive_not_allowed',
      line,
      col,
      `the directive ${directive.name} is not allowed: a policy is read as YAML 1.2 and needs none (remove the line)`,
    );
  }
  const [doc, second] = docs;
  if (doc === undefined || doc.contents === null)
    return at(
      'wrong_type',
      1,
      1,
      'the file is empty; expected a policy mapping with version and egress',
    );
  if (second !== undefined) {
    const { line, col } = position(second.range[0]);
    return at(
      'multiple_documents',
      line,
      col,
      'the file holds more than one YAML document; a policy is one document (remove the "---" or "..." marker before this line, and move what follows into the policy if it belongs there)',
    );
  }
  const overflow = doc.errors.find(isStackOverflow);
  if (overflow !== undefined)
    return { ok: false, errors: [tooDeep(file, position(overflow.pos[0]))] };
  // The parser may say two things of one spot; the first is the cause.
  const spots = new Set<number>();
  const firstAtEachSpot = doc.errors.filter(
    (error) => !spots.has(error.pos[0]) && spots.add(error.pos[0]),
  );
  const syntaxErrors: PolicyError[] = firstAtEachSpot.map((error) => {
    const { line, col } = position(error.pos[0]);
    const duplicate = error.code === 'DUPLICATE_KEY';
    const hint = SYNTAX_HINTS[error.code];
    return {
      code: duplicate ? 'duplicate_key' : 'yaml_syntax',
      file,
      line,
      col,
      path: '',
      message: duplicate
        ? duplicateKeyMessage(doc, error.pos[0], position)
        : `YAML syntax error: ${firstLine(error.message)}${hint === undefined ? '' : `; ${hint}`}`,
    };
  });
  if (syntaxErrors.length > 0) return { ok: false, errors: syntaxErrors };
  const structureErrors = forbiddenConstructs(doc, file, position);
  if (structureErrors.length > 0) return { ok: false, errors: structureErrors };
  if (!isMap(doc.contents)) {
    const { line, col } = position(doc.contents.range?.[0] ?? 0);
    return at(
      'wrong_type',
      line,
      col,
      'the top level is not a mapping; expected keys such as version and egress',
    );
  }

  const parsed = policySchema.safeParse(doc.toJS({ maxAliasCount: 0 }), { reportInput: true });
  if (!parsed.success) {
    const errors = parsed.error.issues.flatMap((issue) =>
      describeIssue(issue, doc, file, position),
    );
    errors.sort((a, b) => a.line - b.line || a.col - b.col);
    return { ok: false, errors };
  }
  const egress = parsed.data.egress.map((rule, index) => ({
    ...rule,
    index,
    line: position(nodeAt(doc, ['egress', index, 'destination'])?.range?.[0] ?? 0).line,
  }));
  return { ok: true, policy: { ...parsed.data, egress, file, hash: policyHash(bytes) } };
}

/**
 * Characters some YAML readers take as the end of a line and others as text: a reviewer's
 * editor or tools could then show a line (a `methods:` after a comment, say) that the engine
 * reads as part of the comment before it, or the other way round.
 */
const DISPUTED_LINE_BREAK = /\r(?!\n)|[\u0085\u2028\u2029]/;

function disputedLineBreakMessage(char: string): string {
  const consequence =
    'YAML readers disagree on whether it ends a line, so what follows it can mean one thing to the engine and another to a reviewer or their tools';
  if (char === '\r')
    return `a carriage return (CR) that is not part of a CRLF line ending: ${consequence}; save the file with LF or CRLF line endings`;
  const name =
    char === '\u0085' ? 'NEXT LINE' : char === '\u2028' ? 'LINE SEPARATOR' : 'PARAGRAPH SEPARATOR';
  const code = char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return `a ${name} character (U+${code}): ${consequence}; remove it (in a double-quoted string, write it as "\\u${code}")`;
}

type Position = (offset: number) => { line: number; col: number };

/**
 * The YAML library makes an Error for each problem it finds; capturing a stack trace for
 * each of a million (a flood of commas) takes most of the time. Nothing reads them.
 */
function withoutStackTraces<T>(run: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return run();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Nesting hundreds of levels deep runs the YAML library (or the checks) out of stack. */
function isStackOverflow(error: unknown): boolean {
  return error instanceof Error && error.message.includes('Maximum call stack size exceeded');
}

function tooDeep(file: string, { line, col }: { line: number; col: number }): PolicyError {
  return {
    code: 'too_deeply_nested',
    file,
    line,
    col,
    path: '',
    message:
      'mappings or lists nest too deeply here to be read; a policy nests a few levels at most (flatten them)',
  };
}

/**
 * A `%YAML` or `%TAG` line. `%YAML 1.1` would change what the file says: octal and
 * sexagesimal numbers, `y`/`n` booleans, `<<` merge keys.
 */
function firstDirective(
  tokens: readonly CST.Token[],
): { offset: number; name: string } | undefined {
  for (const token of tokens) {
    if (token.type === 'directive')
      return { offset: token.offset, name: token.source.split(/\s/, 1)[0] ?? token.source };
  }
  return undefined;
}

/** Anchors, aliases and explicit tags have no use in a policy and hide what it says. */
function forbiddenConstructs(doc: Document, file: string, position: Position): PolicyError[] {
  const errors: PolicyError[] = [];
  visit(doc, {
    Pair(_key, pair) {
      if (!isNode(pair.key) || isScalar(pair.key)) return;
      const { line, col } = position(pair.key.range?.[0] ?? 0);
      errors.push({
        code: 'wrong_type',
        file,
        line,
        col,
        path: '',
        message: `a ${isMap(pair.key) ? 'mapping' : 'sequence'} is not a key; keys are plain words such as egress or destination`,
      });
    },
    Node(_key, node) {
      const { line, col } = position(node.range?.[0] ?? 0);
      if (isAlias(node)) {
        errors.push({
          code: 'alias_not_allowed',
          file,
          line,
          col,
          path: '',
          message: `alias *${node.source} is not allowed; write the value out in full`,
        });
      } else if (node.anchor) {
        errors.push({
          code: 'alias_not_allowed',
          file,
          line,
          col,
          path: '',
          message: `anchor &${node.anchor} is not allowed; anchors and aliases are not supported in a policy`,
        });
      } else if (node.tag !== undefined) {
        errors.push({
          code: 'tag_not_allowed',
          file,
          line,
          col,
          path: '',
          message: `tag ${node.tag} is not allowed; write a plain value`,
        });
      } else if (isScalar(node) && typeof node.value === 'number') {
        const problem = disputedNumberProblem(node.source ?? '', node.value);
        if (problem !== undefined)
          errors.push({ code: 'disputed_number', file, line, col, path: '', message: problem });
      }
    },
  });
  return errors;
}

/**
 * YAML versions read numbers written other than in plain decimal differently (`0443` is 443
 * here and 291 to a YAML 1.1 tool; `0o17`, `0x1B`, `4.43e2`, `.inf` are not numbers to some):
 * a policy's numbers (its ports) must mean the same to every reader.
 */
function disputedNumberProblem(source: string, value: number): string | undefined {
  if (/^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/.test(source)) return undefined;
  const instead = Number.isSafeInteger(value)
    ? `write ${value} if that is what you mean`
    : 'write a whole number in decimal digits';
  return `the number ${source} is not written in plain decimal: YAML readers disagree on what it means (this one reads ${value}); ${instead}`;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  file: string,
  position: Position,
): PolicyError[] {
  const path = issue.path.filter((key): key is string | number => typeof key !== 'symbol');
  const located = (
    code: PolicyErrorCode,
    message: string,
    keyPath = path,
    node = nodeAt(doc, keyPath) ?? nearestNode(doc, keyPath),
  ): PolicyError => {
    const { line, col } = position(node?.range?.[0] ?? 0);
    return { code, file, line, col, path: formatKeyPath(keyPath), message };
  };
  const knownKeysOfParent = () =>
    KNOWN_KEYS[
      path
        .slice(0, -1)
        .filter((k) => typeof k === 'string')
        .join('.')
    ] ?? [];
  const missingKey = (): PolicyError[] => {
    const name = String(path.at(-1));
    // A misspelling of this key is already reported as unknown with "did you mean"; once is enough.
    const parent = nodeAt(doc, path.slice(0, -1));
    const known = knownKeysOfParent();
    const misspelt = isMap(parent)
      ? parent.items.some(
          (item) =>
            isScalar(item.key) &&
            !known.includes(String(item.key.value)) &&
            closestMatch(String(item.key.value), known) === name,
        )
      : false;
    return misspelt
      ? []
      : [located('missing_key', `required key "${name}" is missing`, path, nearestNode(doc, path))];
  };
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const known = KNOWN_KEYS[path.filter((k) => typeof k === 'string').join('.')] ?? [];
        const suggestion = closestMatch(key, known);
        const hint = suggestion
          ? `did you mean "${suggestion}"?`
          : `expected one of ${known.join(', ')}`;
        const node = keyNodeAt(doc, path, key);
        return located(
          'unknown_key',
          `unknown key "${keyAsWritten(node, key)}"; ${hint}`,
          [...path, key],
          node,
        );
      });
    case 'invalid_type':
      if (issue.input === undefined) return missingKey();
      return [
        located(
          'wrong_type',
          `got ${describeValue(issue.input)}; expected ${describeExpected(issue.expected, issue.input)}`,
        ),
      ];
    case 'invalid_value': {
      if (issue.input === undefined && nodeAt(doc, path) === undefined) return missingKey();
      const code = fieldCode(path) ?? 'invalid_value';
      const input = typeof issue.input === 'string' ? issue.input : undefined;
      const options = issue.values.map(String);
      const suggestion = input === undefined ? undefined : closestMatch(input, options);
      const fixed = customMessage(issue.message);
      const message =
        fixed ??
        `got ${describeValue(issue.input)}; expected ${options.map((v) => JSON.stringify(v)).join(', ')}` +
          (suggestion ? ` (did you mean "${suggestion}"?)` : '');
      return [located(code, message)];
    }
    case 'custom': {
      const code = (issue.params?.['code'] as PolicyErrorCode | undefined) ?? 'invalid_value';
      return [located(code, issue.message)];
    }
    case 'too_small':
      return [
        located(
          issue.origin === 'array' ? 'empty_list' : (fieldCode(path) ?? 'invalid_value'),
          issue.message,
        ),
      ];
    default:
      return [located(fieldCode(path) ?? 'invalid_value', issue.message)];
  }
}

/** Our own messages (set with `error:`) are kept; zod's generic ones are rewritten. */
function customMessage(message: string): string | undefined {
  return message.startsWith('Invalid') ? undefined : message;
}

function fieldCode(path: readonly (string | number)[]): PolicyErrorCode | undefined {
  const field = path.findLast((key) => typeof key === 'string');
  const codes: Record<string, PolicyErrorCode> = {
    version: 'unsupported_version',
    methods: 'bad_method',
    ports: 'bad_port',
    paths: 'bad_path',
  };
  return field === undefined ? undefined : codes[field];
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

function describeExpected(expected: string, input: unknown): string {
  const names: Record<string, string> = {
    string: 'a string',
    boolean: 'true or false',
    array: 'a list',
    object: 'a mapping',
    number: 'a number',
    int: 'an integer',
  };
  const text = names[expected] ?? expected;
  if (expected === 'boolean' && typeof input === 'string')
    return `${text} (unquoted; YAML 1.2 reads yes/no/on/off as strings)`;
  return text;
}

function nodeAt(doc: Document, path: readonly (string | number)[]): Node | undefined {
  if (path.length === 0) return isNode(doc.contents) ? doc.contents : undefined;
  const node = doc.getIn(path, true);
  return isNode(node) ? node : undefined;
}

function keyNodeAt(
  doc: Document,
  path: readonly (string | number)[],
  key: string,
): Node | undefined {
  const parent = nodeAt(doc, path);
  if (!isMap(parent)) return parent;
  // Keys reach the schema as strings: `1`, `true` and `~` as "1", "true" and "".
  const pair = parent.items.find(
    (item) => isScalar(item.key) && String(item.key.value ?? '') === key,
  );
  return isNode(pair?.key) ? pair.key : parent;
}

/** A key as the file spells it (`~`, not the "" it becomes). */
function keyAsWritten(node: Node | undefined, key: string): string {
  return isScalar(node) && node.source !== undefined ? node.source : key;
}

/** Names the repeated key (the one at `offset`) and where it first appears. */
function duplicateKeyMessage(doc: Document, offset: number, position: Position): string {
  let message = 'this key appears twice in the same mapping; keep one';
  visit(doc, {
    Map(_key, map) {
      const repeated = map.items.find(
        (pair) => isScalar(pair.key) && pair.key.range?.[0] === offset,
      )?.key;
      if (!isScalar(repeated)) return undefined;
      const first = map.items.find(
        (pair) => isScalar(pair.key) && pair.key.value === repeated.value,
      )?.key;
      const { line, col } = position(isScalar(first) ? (first.range?.[0] ?? 0) : 0);
      message = `key "${keyAsWritten(repeated, String(repeated.value))}" appears twice in the same mapping (first at line ${line}, column ${col}); keep one`;
      return visit.BREAK;
    },
  });
  return message;
}

/** The deepest node that exists along `path` (for errors about something missing). */
function nearestNode(doc: Document, path: readonly (string | number)[]): Node | undefined {
  for (let length = path.length; length >= 0; length--) {
    const node = nodeAt(doc, path.slice(0, length));
    if (node) return node;
  }
  return undefined;
}

function textPosition(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, col: offset - before.lastIndexOf('\n') };
}

function bytePosition(bytes: Uint8Array, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) [line, lineStart] = [line + 1, i + 1];
  }
  // Columns count characters (UTF-16 units, as for every other error), not bytes; all bytes
  // before `offset` are valid UTF-8.
  return { line, col: new TextDecoder().decode(bytes.subarray(lineStart, offset)).length + 1 };
}

/** How to fix what the parser's own words leave open. */
const SYNTAX_HINTS: Partial<Record<string, string>> = {
  BLOCK_AS_IMPLICIT_KEY:
    'check the indentation of the next line: the keys of one rule start in the same column',
  MULTILINE_IMPLICIT_KEY:
    'a key and its value start on one line, with a space after the colon (key: value)',
  BAD_INDENT:
    'check the indentation: the keys of one mapping start in the same column, and a [ list ends with ]',
  TAB_AS_INDENT: 'indent with spaces',
};

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
