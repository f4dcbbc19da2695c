// One run of an agent script inside the boundary, from a validated request to a sealed
// evidence directory: set up (each change saved to the run state as it is made), probe, run
// the script, stop the engine, collect the evidence, tear down. A failed step tears down what
// was made and reports; nothing is left half-done.
import { spawn } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { basename, dirname, join } from 'node:path';
import { agentArgv, type LaunchPlan, type LaunchTools } from './agent-launch.js';
import {
  agentPrivateDirs,
  hiddenByPrivateDirs,
  PRIVATE_DIR_PATHS,
  type PrivateDir,
} from './private-dirs.js';
import { syscallsOf } from './seccomp.js';
import { agentEnvironment } from './agent-env.js';
import { collectEvidence } from './evidence-collect.js';
import { connectableHostSockets, unixSocketListings } from './host-sockets.js';
import { grantWriteAccess } from './access.js';
import { BoundaryError, runTool } from './command.js';
import {
  EngineProcess,
  type EngineLaunch,
  type EngineReady,
  type EngineSealed,
} from './engine-process.js';
import { RUNTIME_BASE, runLayout, type RunLayout } from './layout.js';
import { openListenerInNamespace, type NamespaceListener } from './listener.js';
import { killNamespaceProcesses } from './namespace-processes.js';
import { createNetwork, networkProblems, type NetworkTools } from './network.js';
import { PROBE_SCRIPT, probeArgs, readProbeOutput } from './probes.js';
import { privilegeProblems } from './process-privileges.js';
import { newRunState, saveRunState, type RunState } from './run-state.js';
import { runProcessOf } from './run-process.js';
import { SIDE_CHANNEL_PATHS } from './side-channels.js';
import { SYSTEM_CA_BUNDLES } from '../system-ca-bundles.js';
import { installSudoersDeny } from './sudoers.js';
import { teardown } from './teardown.js';
import { takeRunLock } from './run-lock.js';
import { AGENT_USER, HOST_USER, ensureAccount, type Account } from './users.js';
import { isRegularFile } from '../regular-file.js';

export type BoundaryTools = LaunchTools & NetworkTools & { readonly flock: string };

export interface BoundaryRequest {
  /** `pe-` and 10 hex digits (see newRunId): the namespace, the run directory, the sudoers file. */
  readonly runId: string;
  readonly tools: BoundaryTools;
  /** The running CLI bundle and node: the engine runs the same program. */
  readonly node: string;
  readonly cli: string;
  readonly policyBytes: Uint8Array;
  readonly signingKeyPem: string;
  /** Files of the caller's that must stay out of the agent's reach (its signing key). */
  readonly hiddenFiles: readonly string[];
  readonly identity: string;
  /** Bound into the chain's session open: what the run states about itself (run-capsule.ts). */
  readonly runCapsuleSha256: string;
  readonly pins: readonly string[];
  readonly upstreamCaPem: string | undefined;
  /** Bound secrets (env name → value) the engine scans for. */
  readonly secretValues: Readonly<Record<string, string>>;
  readonly script: string;
  readonly args: readonly string[];
  readonly workdir: string;
  readonly writable: readonly string[];
  readonly maxProcesses: number;
  readonly callerEnv: NodeJS.ProcessEnv;
  /** Where the sealed evidence files and the engine's log are copied before teardown. */
  readonly evidenceCopyDir: string;
  readonly engineLogCopy: string;
  /** Who the collected evidence belongs to; null: root. */
  readonly evidenceOwner: { readonly uid: number; readonly gid: number } | null;
  readonly log: (line: string) => void;
  /** Aborted on SIGINT/SIGTERM: setup stops, or the agent's namespace is killed. */
  readonly cancel: AbortSignal;
}

export interface BoundaryOutcome {
  readonly runId: string;
  readonly agentUid: number;
  readonly hostUid: number;
  /** The engine's address inside the namespace. */
  readonly proxyUrl: string;
  /** When the script started and ended (RFC 3339). */
  readonly startedAt: string;
  readonly completedAt: string;
  readonly agentExitCode: number;
  readonly agentSignal: NodeJS.Signals | null;
  readonly signerKey: string;
  readonly sealed: EngineSealed;
  /**
   * Why teardown failed after the agent ran and its evidence was collected: the packet is
   * still written, then the run fails with this.
   */
  readonly teardownFailure?: string;
}

const CANCELLED = 'cancelled (SIGINT/SIGTERM) before the agent started';

export async function runInBoundary(request: BoundaryRequest): Promise<BoundaryOutcome> {
  const { runId } = request;
  const layout = runLayout(runId, basename(request.script));
  // Not listable: a run's agent must not find the directories of one run before it by name.
  await mkdir(RUNTIME_BASE, { recursive: true, mode: 0o711 });
  await chmod(RUNTIME_BASE, 0o711);
  const lock = await takeRunLock(request.tools.flock, RUNTIME_BASE, (problem) =>
    request.log(`run ${runId}: warning: ${problem}`),
  );
  try {
    return await runLocked(request, layout);
  } finally {
    await lock.release();
  }
}

async function runLocked(request: BoundaryRequest, layout: RunLayout): Promise<BoundaryOutcome> {
  const { runId } = request;
  await mkdir(layout.root, { mode: 0o711 });
  const state = newRunState(runId, layout.root, request.tools.ip, await runProcessOf(process.pid), {
    runId,
    evidenceDir: layout.evidenceDir,
    engineLog: layout.engineLog,
    into: request.evidenceCopyDir,
    engineLogCopy: request.engineLogCopy,
    owner: request.evidenceOwner,
  });
  await saveRunState(layout.stateFile, state);
  request.log(`run ${runId}: setting up the boundary`);
  let outcome: BoundaryOutcome | undefined;
  let failure: unknown;
  try {
    outcome = await setUpAndRun(request, layout, state);
  } catch (error) {
    failure = error;
  }
  const failures = await teardown(state);
  if (failures.length > 0) {
    const before = failure === undefined ? '' : ` (after: ${(failure as Error).message})`;
    const teardownFailure = `teardown of ${runId} failed: ${failures.join('; ')}${before}`;
    if (outcome === undefined) throw new BoundaryError(teardownFailure);
    return { ...outcome, teardownFailure };
  }
  request.log(`run ${runId}: boundary torn down`);
  if (outcome === undefined) throw failure;
  return outcome;
}

async function setUpAndRun(
  request: BoundaryRequest,
  layout: RunLayout,
  state: RunState,
): Promise<BoundaryOutcome> {
  const checkpoint = async (): Promise<void> => {
    await saveRunState(layout.stateFile, state);
    if (request.cancel.aborted) throw new BoundaryError(CANCELLED);
  };
  const account = async (name: string): Promise<Account> => {
    const made = await ensureAccount(name, async () => {
      state.createdUsers.push(name);
      await saveRunState(layout.stateFile, state);
    });
    // Made by someone else between the lookup and useradd: not this run's to remove.
    if (!made.created) state.createdUsers = state.createdUsers.filter((user) => user !== name);
    return made;
  };
  const agent = await account(AGENT_USER);
  const host = await account(HOST_USER);
  await checkpoint();

  // Copied before anything else starts a process: a fork made while the copy is open for
  // writing would hold that descriptor, and exec'ing the copy would then fail (ETXTBSY).
  await mkdir(layout.binDir, { mode: 0o755 });
  const program = {
    node: await reachableCopy(request.node, join(layout.binDir, 'node'), 0o555),
    cli: await reachableCopy(request.cli, join(layout.binDir, 'cli.js'), 0o444),
  };

  // Three independent strands: the sudoers drop-in; the run's files, then the engine (it
  // takes longest to load, so it starts first); the namespace, then the listener inside it.
  state.netnsCreated = true;
  await checkpoint();
  // Each strand records what it made as soon as it made it, so a failure in another strand
  // still tears it down.
  let opened: NamespaceListener | undefined;
  const [engine, listener] = await settleAll([
    (async () => {
      await writeRunFiles(request, layout, agent, host);
      const started = EngineProcess.spawn(engineLaunch(request, layout, host, program));
      state.enginePid = started.pid ?? null;
      return started;
    })(),
    (async () => {
      await createNetwork(layout.netns, request.tools);
      opened = await openListenerInNamespace(request.tools.ip, layout.netns);
      return opened;
    })(),
    (async () => {
      state.sudoersFile = (await installSudoersDeny(layout.runId, [AGENT_USER, HOST_USER])) ?? null;
    })(),
  ] as const).catch((error: unknown) => {
    opened?.handle.close();
    throw error;
  });
  await checkpoint();

  const privateDirs = agentPrivateDirs({
    stagesDir: layout.stagesDir,
    runFiles: [layout.agentDir, layout.home],
    visible: [request.workdir, ...request.writable],
  });
  await makeStages(layout, privateDirs);
  const inSight = (path: string): boolean => !hiddenByPrivateDirs(privateDirs, path);
  // Taken last, so sockets bound while the boundary was being set up are found too.
  const hostSockets = (await connectableHostSockets(await unixSocketListings(), agent.uid)).filter(
    inSight,
  );
  if (hostSockets.length > 0) {
    request.log(
      `run ${layout.runId}: host unix sockets the agent could connect to (outside ${PRIVATE_DIR_PATHS.join(', ')}), masked inside the boundary: ${hostSockets.join(', ')}`,
    );
  }
  const plan: LaunchPlan = {
    netns: layout.netns,
    workdir: request.workdir,
    uid: agent.uid,
    gid: agent.gid,
    maxProcesses: request.maxProcesses,
    caBundle: layout.caBundle,
    caBundleTargets: await existing(SYSTEM_CA_BUNDLES),
    privateDirs,
    masked: [...SIDE_CHANNEL_PATHS, ...request.hiddenFiles, ...hostSockets].filter(inSight),
    syscalls: syscallsOf(process.arch),
  };
  const proxyUrl = `http://127.0.0.1:${listener.port}`;
  const env = agentEnvironment(request.callerEnv, {
    proxyUrl,
    home: layout.home,
    user: AGENT_USER,
    caBundle: layout.caBundle,
  });
  // The probes run while the engine finishes loading: their connection waits in the
  // listener's backlog until the engine accepts it.
  const [ready] = await settleAll([
    engine.serve(listener.handle),
    probe(request, layout, plan, [...SIDE_CHANNEL_PATHS, ...hostSockets], env, listener.port),
  ] as const);
  await checkEngineUnprivileged(engine.pid, host);
  await writeCaBundle(layout, ready);
  for (const path of request.writable) {
    state.aclGrants.push(await grantWriteAccess(path, agent.uid));
    await checkpoint();
  }
  await checkpoint();

  request.log(
    `run ${layout.runId}: boundary ready (proxy ${proxyUrl} inside the namespace); starting ${basename(request.script)}`,
  );
  state.agentStarted = true;
  await saveRunState(layout.stateFile, state);
  const startedAt = new Date().toISOString();
  const exit = await runAgent(
    request.tools,
    plan,
    env,
    layout.agentScript,
    request.args,
    request.cancel,
  );
  const completedAt = new Date().toISOString();
  request.log(
    `run ${layout.runId}: agent ${exit.signal === null ? `exited ${exit.code}` : `killed by ${exit.signal}`}; sealing the evidence`,
  );

  // Whatever the engine managed to write is collected, sealed or not: evidence is never dropped.
  const stopped = await engine.stop().then(
    (sealed) => ({ sealed }),
    (error: unknown) => ({ error }),
  );
  state.enginePid = null;
  await saveRunState(layout.stateFile, state);
  const warning = await collectEvidence(state.evidence);
  state.evidenceCollected = true;
  await saveRunState(layout.stateFile, state);
  if (warning !== undefined) request.log(`run ${layout.runId}: warning: ${warning}`);
  request.log(`run ${layout.runId}: evidence copied to ${request.evidenceCopyDir}`);
  if ('error' in stopped) throw stopped.error;
  const { sealed } = stopped;
  if (sealed.logError !== undefined) {
    request.log(
      `run ${layout.runId}: warning: engine.log is incomplete: writing it failed (${sealed.logError}); the evidence is whole`,
    );
  }
  return {
    runId: layout.runId,
    agentUid: agent.uid,
    hostUid: host.uid,
    proxyUrl,
    startedAt,
    completedAt,
    agentExitCode: exit.code ?? 128 + signalNumber(exit.signal),
    agentSignal: exit.signal,
    signerKey: ready.signerKey,
    sealed,
  };
}

/**
 * Like Promise.all, but waits for every strand to settle before failing, so that teardown
 * never races a step still in flight; the first failure is the one reported.
 */
async function settleAll<T extends readonly unknown[]>(strands: {
  readonly [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const settled = await Promise.allSettled(strands);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function engineLaunch(
  request: BoundaryRequest,
  layout: RunLayout,
  host: Account,
  program: { readonly node: string; readonly cli: string },
): EngineLaunch {
  return {
    setpriv: request.tools.setpriv,
    ...program,
    uid: host.uid,
    gid: host.gid,
    proxyArgs: [
      '--policy',
      layout.policyFile,
      '--evidence-dir',
      layout.evidenceDir,
      '--signing-key',
      layout.signingKey,
      '--identity',
      request.identity,
      '--run-capsule-sha256',
      request.runCapsuleSha256,
      ...request.pins.flatMap((pin) => ['--resolve', pin]),
      ...(request.upstreamCaPem === undefined ? [] : ['--upstream-ca', layout.upstreamCaFile]),
    ],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/nonexistent' },
    secretValues: request.secretValues,
    logFile: layout.engineLog,
  };
}

async function writeRunFiles(
  request: BoundaryRequest,
  layout: RunLayout,
  agent: Account,
  host: Account,
): Promise<void> {
  await mkdir(layout.engineDir, { mode: 0o700 });
  await chown(layout.engineDir, host.uid, host.gid);
  await mkdir(layout.evidenceDir, { mode: 0o700 });
  await chown(layout.evidenceDir, host.uid, host.gid);
  await writeOwned(layout.signingKey, request.signingKeyPem, 0o400, host);
  await writeOwned(layout.policyFile, request.policyBytes, 0o444, { uid: 0, gid: 0 });
  if (request.upstreamCaPem !== undefined) {
    await writeOwned(layout.upstreamCaFile, request.upstreamCaPem, 0o444, { uid: 0, gid: 0 });
  }

  await mkdir(dirname(layout.agentScript), { recursive: true, mode: 0o755 });
  await writeOwned(layout.agentScript, await readFile(request.script), 0o555, { uid: 0, gid: 0 });
  await writeOwned(layout.probeScript, PROBE_SCRIPT, 0o555, { uid: 0, gid: 0 });
  await mkdir(layout.home, { mode: 0o700 });
  await chown(layout.home, agent.uid, agent.gid);
}

async function makeStages(layout: RunLayout, dirs: readonly PrivateDir[]): Promise<void> {
  await mkdir(layout.stagesDir, { mode: 0o700 });
  for (const { path, stage } of dirs) if (stage !== path) await mkdir(stage, { mode: 0o700 });
}

async function writeOwned(
  file: string,
  data: string | Uint8Array,
  mode: number,
  owner: { uid: number; gid: number },
): Promise<void> {
  await writeFile(file, data, { mode, flag: 'wx' });
  await chown(file, owner.uid, owner.gid);
  await chmod(file, mode);
}

/** The node binary, or a copy of it when the host user could not reach the original. */
/** The engine's program file, or a copy of it when the host user could not reach the original. */
async function reachableCopy(file: string, copy: string, mode: number): Promise<string> {
  if (await othersCanUse(file, mode)) return file;
  await copyFile(file, copy);
  await chmod(copy, mode);
  return copy;
}

/** Whether users other than the owner can use the file (mode bits), through every directory. */
async function othersCanUse(file: string, mode: number): Promise<boolean> {
  const info = await stat(file);
  const needed = mode & 0o007;
  if ((info.mode & needed) !== needed) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (((await stat(dir)).mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

async function existing(paths: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const path of paths) {
    if (await isRegularFile(path)) found.push(path);
  }
  return found;
}

async function checkEngineUnprivileged(
  pid: number | undefined,
  host: { uid: number; gid: number },
): Promise<void> {
  const status = pid === undefined ? '' : await readFile(`/proc/${pid}/status`, 'utf8');
  const problems = privilegeProblems(status, host.uid, host.gid);
  if (problems.length > 0)
    throw new BoundaryError(
      `the engine (pid ${pid ?? 'unknown'}) did not drop its privileges to ${HOST_USER}: ${problems.join('; ')}`,
    );
}

/** The system roots plus the run CA, bound over the system bundle inside the boundary. */
async function writeCaBundle(layout: RunLayout, ready: EngineReady): Promise<void> {
  const [system] = await existing(SYSTEM_CA_BUNDLES);
  const roots = system === undefined ? '' : await readFile(system, 'utf8');
  const runCa = ready.caCert === null ? '' : await readFile(ready.caCert, 'utf8');
  await writeOwned(
    layout.caBundle,
    `${roots}${roots.endsWith('\n') || roots === '' ? '' : '\n'}${runCa}`,
    0o444,
    { uid: 0, gid: 0 },
  );
}

async function probe(
  request: BoundaryRequest,
  layout: RunLayout,
  plan: LaunchPlan,
  sockets: readonly string[],
  env: Record<string, string>,
  proxyPort: number,
): Promise<void> {
  // The CA bundle is written once the engine reports its CA; the probes do not need it.
  const argv = agentArgv(
    request.tools,
    { ...plan, caBundleTargets: [] },
    layout.probeScript,
    probeArgs({
      uid: plan.uid,
      gid: plan.gid,
      proxyPort,
      secretFiles: [layout.signingKey, ...request.hiddenFiles],
      protectedDirs: [layout.evidenceDir, layout.engineDir],
      masked: sockets,
    }),
  );
  const [result, firewall] = await Promise.all([
    runTool(argv, { env }),
    networkProblems(layout.netns, request.tools),
  ]);
  const outcome = readProbeOutput(result.stdout, result.code);
  const failed = [...outcome.failed, ...firewall.map((problem) => `firewall: ${problem}`)];
  if (failed.length > 0) {
    const said = result.stderr.trim().split('\n').slice(-3).join(' | ');
    if (said !== '') failed.push(`(the probe said: ${said})`);
    throw new BoundaryError(
      `boundary probes failed, the script was not started:\n  ${failed.join('\n  ')}`,
    );
  }
  request.log(`run ${layout.runId}: ${outcome.passed.length} probes passed inside the boundary`);
}

/**
 * The agent's output, passed on as it comes. When our own reader goes away (`run … | head`),
 * the rest is read and dropped: a pipe left full would stall the agent until it is killed.
 */
function passOn(from: Readable, to: NodeJS.WriteStream): void {
  const dropTheRest = (): void => void from.resume();
  from.pipe(to, { end: false });
  to.once('error', dropTheRest);
  from.once('close', () => to.off('error', dropTheRest));
}

async function runAgent(
  tools: LaunchTools,
  plan: LaunchPlan,
  env: Record<string, string>,
  script: string,
  args: readonly string[],
  cancel: AbortSignal,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const [file, ...rest] = agentArgv(tools, plan, script, args);
  // Pipes, not the caller's descriptors: a terminal would let the agent push keystrokes into
  // the caller's shell (TIOCSTI) or reset it.
  const child = spawn(file ?? '', rest, { stdio: ['ignore', 'pipe', 'pipe'], env });
  passOn(child.stdout, process.stdout);
  passOn(child.stderr, process.stderr);
  // Everything in the namespace dies but the launcher, which then reaps the agent and exits.
  const onCancel = (): void =>
    void killNamespaceProcesses(tools.ip, plan.netns, child.pid).catch(() => child.kill('SIGKILL'));
  cancel.addEventListener('abort', onCancel, { once: true });
  // A cancellation that came while the agent was being started has already fired.
  if (cancel.aborted) onCancel();
  try {
    return await new Promise((resolve, reject) => {
      child.once('error', (error) =>
        reject(new BoundaryError(`starting the agent: ${error.message}`, { cause: error })),
      );
      // A cancelled agent was SIGKILLed with its namespace, whatever its launcher then reports.
      // `close`: its output has been passed on whole.
      child.once('close', (code, signal) =>
        resolve(cancel.aborted ? { code: null, signal: 'SIGKILL' } : { code, signal }),
      );
    });
  } finally {
    cancel.removeEventListener('abort', onCancel);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal === null ? 1 : constants.signals[signal];
}
