// `run`'s command line, checked in full before anything on the machine changes: the policy,
// the working directory, the script (inside the working directory, symlinks resolved), the
// writable paths, the evidence output, the keys.
import { lstat, readFile, realpath, readdir, rm, stat } from 'node:fs/promises';
import { PRIVATE_RUN, unkeptPrivateDir } from '../boundary/private-dirs.js';
import { isRunId, newRunId } from '../boundary/layout.js';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { formatPolicyError, parsePolicy, type Policy } from '../policy/index.js';
import { parseNamePins } from '../engine/name-pin.js';
import { publicKeyHex, type CryptoBackend } from '../receipts/index.js';
import { type CliIo, UsageError } from './io.js';
import { KeyArgumentError, readPrivateKey, readPublicKey, type ReadKey } from './key-argument.js';
import { optionValue, parseOptions, type ParsedOptions } from './options.js';
import { readUpstreamCa } from './upstream-ca.js';
import { boundSecretValues } from './bound-secrets.js';
import { readPolicyFile } from './policy-file.js';
import { identityProblem } from '../agent-identity.js';

export const DEFAULT_EVIDENCE_OUTPUT = 'audit-artifacts';
export const DEFAULT_IDENTITY = 'pipelock-agent';
export const DEFAULT_MAX_PROCESSES = 1024;

export interface RunRequest {
  readonly policyFile: string;
  readonly policyBytes: Uint8Array;
  readonly policy: Policy;
  readonly workdir: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly writable: readonly string[];
  readonly evidenceOutput: string;
  /** The signing key's seed, or undefined for a key made for this run only. */
  readonly seed: Uint8Array | undefined;
  /** The caller's key file, kept out of the agent's sight. */
  readonly signingKeyFile: string | undefined;
  /** Pinned public key (hex): the verdict can be `valid` only with one. */
  readonly pinnedKey: string | undefined;
  readonly identity: string;
  readonly pins: readonly string[];
  readonly upstreamCaPem: string | undefined;
  readonly maxProcesses: number;
  readonly runId: string;
  /** The agent's environment: from --agent-env-file (then deleted), or this process's. */
  readonly callerEnv: NodeJS.ProcessEnv;
  /** The policy's bound secrets that have a value, from callerEnv. */
  readonly secretValues: Readonly<Record<string, string>>;
  readonly secretWarnings: readonly string[];
  /** Where to write how the run ended (run-outcome.ts), for the action. */
  readonly outcomeFile: string | undefined;
}

/** The request is wrong in a way the caller must fix (exit 1 with every problem listed). */
export class RunRequestError extends Error {
  constructor(
    readonly problems: readonly string[],
    /** Where the caller asked to be told how the run ended (it ended here). */
    readonly outcomeFile: string | undefined,
  ) {
    super(problems.join('\n'));
  }
}

export async function parseRunRequest(
  args: readonly string[],
  io: CliIo,
  backend: CryptoBackend,
  cwd = process.cwd(),
): Promise<RunRequest> {
  const separator = args.indexOf('--');
  if (separator < 0)
    throw new UsageError(
      'run: give the agent script after "--": run --policy FILE -- SCRIPT [ARGS...]',
    );
  const [scriptArg, ...scriptArgs] = args.slice(separator + 1);
  if (scriptArg === undefined) throw new UsageError('run: no script after "--"');
  const options = parseOptions('run', args.slice(0, separator), {
    single: [
      'policy',
      'evidence-output',
      'signing-key',
      'public-key',
      'identity',
      'workdir',
      'upstream-ca',
      'max-processes',
      'run-id',
      'agent-env-file',
      'outcome-file',
    ],
    repeatable: ['writable', 'resolve'],
  });
  const policyFile = optionValue(options, 'policy');
  if (policyFile === undefined) throw new UsageError('run: --policy FILE is required');
  const pins = options.values.get('resolve') ?? [];
  const pinProblem = parseNamePins(pins);
  if (typeof pinProblem === 'string') throw new UsageError(`run: --resolve ${pinProblem}`);
  const identity = optionValue(options, 'identity') ?? DEFAULT_IDENTITY;
  const wrongIdentity = identityProblem(identity);
  if (wrongIdentity !== undefined) throw new UsageError(`run: --identity: ${wrongIdentity}`);
  const maxProcesses = processLimit(optionValue(options, 'max-processes'));
  const runId = optionValue(options, 'run-id') ?? newRunId();
  if (!isRunId(runId))
    throw new UsageError(`run: --run-id ${runId}: expected pe- and 10 hex digits`);

  const problems: string[] = [];
  let policyBytes: Uint8Array = new Uint8Array();
  let policy: Policy | undefined;
  try {
    policyBytes = await readPolicyFile(policyFile);
    const parsed = parsePolicy(policyBytes, policyFile);
    if (parsed.ok) policy = parsed.policy;
    else problems.push(...parsed.errors.map(formatPolicyError));
  } catch (error) {
    problems.push(
      `cannot read the policy ${policyFile}: ${(error as Error).message}; give --policy a readable policy file`,
    );
  }

  const workdir = await directory(
    resolve(cwd, optionValue(options, 'workdir') ?? '.'),
    'working directory',
    problems,
  );
  const script =
    workdir === undefined ? undefined : await scriptInside(workdir, scriptArg, problems);
  const writable: string[] = [];
  for (const path of options.values.get('writable') ?? []) {
    const real =
      workdir === undefined
        ? undefined
        : await pathInside(workdir, path, '--writable', problems, true);
    if (real !== undefined) writable.push(real);
  }
  const unseen = workdir === undefined ? undefined : unkeptPrivateDir(workdir);
  if (workdir !== undefined && unseen !== undefined) {
    problems.push(privateDirProblem('working directory', workdir, unseen));
  } else {
    for (const path of writable) {
      const dir = unkeptPrivateDir(path);
      if (dir !== undefined) problems.push(privateDirProblem('--writable', path, dir));
    }
  }
  const evidenceOutput = await checkedOutput(
    resolve(cwd, optionValue(options, 'evidence-output') ?? DEFAULT_EVIDENCE_OUTPUT),
    writable,
    problems,
  );
  // Whatever is there was not checked (a symlink or a FIFO, planted through a writable path
  // of an earlier run, would take root's writes elsewhere or hang them): the packet goes only
  // into a directory of its own.
  const leftover = await readdir(evidenceOutput).catch(() => []);
  if (leftover.length > 0) {
    const shown = leftover.slice(0, 3).join(', ') + (leftover.length > 3 ? ', …' : '');
    problems.push(
      `--evidence-output ${evidenceOutput} already holds ${leftover.length} entries (${shown}); the packet is written into an empty or new directory: move them away or choose another`,
    );
  }
  const keys = await runKeys(options, backend, problems);
  const caFile = optionValue(options, 'upstream-ca');
  let upstreamCaPem: string | undefined;
  if (caFile !== undefined) {
    const extraCa = await readUpstreamCa(io, caFile);
    if (extraCa.ok) upstreamCaPem = extraCa.pem;
    else problems.push(extraCa.problem);
  }
  const envFile = optionValue(options, 'agent-env-file');
  const callerEnv = envFile === undefined ? process.env : await environmentFile(envFile, problems);
  const secrets = policy === undefined ? undefined : boundSecretValues(policy, callerEnv);
  problems.push(...(secrets?.problems ?? []));
  if (
    problems.length > 0 ||
    policy === undefined ||
    secrets === undefined ||
    workdir === undefined ||
    script === undefined
  ) {
    throw new RunRequestError(problems, optionValue(options, 'outcome-file'));
  }
  return {
    policyFile,
    policyBytes,
    policy,
    workdir,
    script,
    args: scriptArgs,
    writable,
    evidenceOutput,
    ...keys,
    identity,
    pins,
    upstreamCaPem,
    maxProcesses,
    runId,
    callerEnv,
    secretValues: secrets.values,
    secretWarnings: secrets.warnings,
    outcomeFile: optionValue(options, 'outcome-file'),
  };
}

/**
 * The environment the action hands over (sudo would reset it): a JSON object of strings in
 * a file only the caller can read, removed as soon as it is read.
 */
async function environmentFile(file: string, problems: string[]): Promise<NodeJS.ProcessEnv> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
    await rm(file, { force: true });
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      Array.isArray(parsed) ||
      !Object.values(parsed).every((value) => typeof value === 'string')
    ) {
      problems.push(`--agent-env-file ${file}: expected a JSON object of strings`);
      return {};
    }
    return parsed as NodeJS.ProcessEnv;
  } catch (error) {
    problems.push(`--agent-env-file ${file}: ${(error as Error).message}`);
    return {};
  }
}

/**
 * The evidence output must stay out of the agent's reach from the check until the packet is
 * written: not inside (or around) a writable path once symlinks are resolved, and no directory
 * on the way to it the agent could change: each owned by root or the invoking user, none
 * writable by others (a sticky one like /tmp only above an output that exists already: the
 * agent could create a missing one first). Returns the output with symlinks resolved, the
 * path everything is written to.
 */
async function checkedOutput(
  output: string,
  writable: readonly string[],
  problems: string[],
): Promise<string> {
  const { existing, missing } = await nearestExisting(output);
  const base = await realpath(existing).catch(() => undefined);
  if (base === undefined) {
    problems.push(`--evidence-output ${output}: ${existing} is a symlink to nothing`);
    return output;
  }
  const real = resolve(base, ...missing);
  for (const path of writable) {
    if (isInside(path, real) || isInside(real, path)) {
      problems.push(
        `--evidence-output ${output} overlaps --writable ${path}: the agent could tamper with its own evidence; choose an output outside the writable paths`,
      );
    }
  }
  const owners = new Set([0, process.getuid?.() ?? 0, Number(process.env['SUDO_UID'] ?? 0)]);
  for (const dir of ancestors(base)) {
    const info = await stat(dir);
    const mode = (info.mode & 0o7777).toString(8);
    if (dir === base && !info.isDirectory()) {
      problems.push(
        dir === real
          ? `--evidence-output ${output} exists and is not a directory`
          : `--evidence-output ${output}: ${dir} is not a directory`,
      );
    } else if (!owners.has(info.uid)) {
      problems.push(
        `--evidence-output ${output}: ${dir} belongs to uid ${info.uid}, who could replace what is in it; choose an output under directories of root or your own`,
      );
    } else if ((info.mode & 0o022) !== 0 && (dir === base || (info.mode & 0o1000) === 0)) {
      problems.push(
        dir === real
          ? `--evidence-output ${output} is writable by other users (mode ${mode}); use a directory only its owner can write, or a new one`
          : `--evidence-output ${output}: ${dir} is writable by other users (mode ${mode}), so the agent could ${dir === base ? 'create the output before the packet is written' : 'put something else in its place'}; create the output beforehand (mkdir -m 0755) or choose one under a directory only you can write`,
      );
    }
  }
  return real;
}

/** The deepest part of `path` that exists, and the names below it that do not (yet). */
async function nearestExisting(path: string): Promise<{ existing: string; missing: string[] }> {
  const missing: string[] = [];
  let existing = path;
  while ((await lstat(existing).catch(() => undefined)) === undefined) {
    missing.unshift(basename(existing));
    existing = dirname(existing);
  }
  return { existing, missing };
}

function privateDirProblem(what: string, path: string, dir: string): string {
  return dir === PRIVATE_RUN
    ? `${what} ${path} is under ${PRIVATE_RUN}, of which the agent gets an empty copy (host daemons keep their sockets there); choose a directory outside ${PRIVATE_RUN}`
    : `${what} ${path}: the agent gets an empty ${dir} of its own, so it cannot be given the host's; choose a directory under it or elsewhere`;
}

/** `/`, `/a`, `/a/b` for `/a/b`: every directory from the root down to it. */
function ancestors(path: string): string[] {
  const dirs: string[] = [sep];
  for (const part of path.split(sep).filter((name) => name !== ''))
    dirs.push(resolve(dirs.at(-1) ?? sep, part));
  return dirs;
}

function processLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_PROCESSES;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < 16 || value > 1_000_000) {
    throw new UsageError(`run: --max-processes ${text}: give a whole number from 16 to 1000000`);
  }
  return value;
}

async function directory(
  path: string,
  what: string,
  problems: string[],
): Promise<string | undefined> {
  try {
    const real = await realpath(path);
    if ((await stat(real)).isDirectory()) return real;
    problems.push(`${what} ${path} is not a directory`);
  } catch {
    problems.push(`${what} ${path} does not exist`);
  }
  return undefined;
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The real path of `path` (relative to the working directory), if it stays inside it. */
async function pathInside(
  workdir: string,
  path: string,
  what: string,
  problems: string[],
  mayBeWorkdir: boolean,
): Promise<string | undefined> {
  const given = resolve(workdir, path);
  let real: string;
  try {
    real = await realpath(given);
  } catch {
    problems.push(`${what} ${path} does not exist (looked for ${given})`);
    return undefined;
  }
  if (!isInside(workdir, real) || (!mayBeWorkdir && real === workdir)) {
    const via = real === given ? '' : ` (it resolves to ${real})`;
    problems.push(
      `${what} ${path} is outside the working directory ${workdir}${via}; the agent may only be given what is inside it`,
    );
    return undefined;
  }
  return real;
}

async function scriptInside(
  workdir: string,
  path: string,
  problems: string[],
): Promise<string | undefined> {
  const real = await pathInside(workdir, path, 'script', problems, false);
  if (real === undefined) return undefined;
  if (!(await stat(real)).isFile()) {
    problems.push(`script ${path} is not a regular file`);
    return undefined;
  }
  return real;
}

async function runKeys(
  options: ParsedOptions,
  backend: CryptoBackend,
  problems: string[],
): Promise<Pick<RunRequest, 'seed' | 'signingKeyFile' | 'pinnedKey'>> {
  const signingArg = optionValue(options, 'signing-key');
  const publicArg = optionValue(options, 'public-key');
  if (publicArg !== undefined && signingArg === undefined) {
    problems.push(
      '--public-key pins the key that signs this run, so it needs --signing-key; omit both for a key made for this run (verdict self_consistent_only)',
    );
  }
  let signing: ReadKey | undefined;
  let pinnedKey: string | undefined;
  try {
    if (signingArg !== undefined)
      signing = await readPrivateKey(signingArg, backend, '--signing-key');
    if (publicArg !== undefined)
      pinnedKey = publicKeyHex((await readPublicKey(publicArg, '--public-key')).key);
  } catch (error) {
    if (!(error instanceof KeyArgumentError)) throw error;
    problems.push(error.message);
  }
  const seed = signing?.key;
  const signer = seed === undefined ? undefined : publicKeyHex(backend.ed25519PublicKey(seed));
  if (signer !== undefined && pinnedKey !== undefined && signer !== pinnedKey) {
    problems.push(
      `--public-key (not shown: it may be a secret key) is not the public key of --signing-key, ${signer}; the run could never verify as valid`,
    );
  }
  const signingKeyFile =
    signing !== undefined && 'file' in signing.source
      ? await realpath(signing.source.file)
      : undefined;
  return { seed, signingKeyFile, pinnedKey };
}
