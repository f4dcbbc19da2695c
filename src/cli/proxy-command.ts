// `pipelock-egress proxy`: the enforcing engine alone, on a loopback port, for development.
// Prints one JSON line when ready; SIGTERM or SIGINT seals the evidence and exits 0.

import { formatPolicyError, parsePolicy } from '../policy/index.js';
import { Engine } from '../engine/engine.js';
import { EvidenceWriter, type SealSummary } from '../engine/evidence-writer.js';
import { createResolver } from '../engine/resolver.js';
import { parseNamePins } from '../engine/name-pin.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { access, constants } from 'node:fs/promises';
import { RunCertificateAuthority } from '../engine/tls/run-ca.js';
import { RUN_CA_FILE } from '../packet/packet-json.js';
import packageJson from '../../package.json' with { type: 'json' };
import { type CliIo, UsageError } from './io.js';
import { KeyArgumentError, resolvePrivateKey } from './key-argument.js';
import { optionValue, parseOptions, type ParsedOptions } from './options.js';
import { listenText, loopbackListen } from './loopback-listen.js';
import { readSystemCaBundle, readUpstreamCa } from './upstream-ca.js';
import { engineSecretValues } from './bound-secrets.js';
import { readPolicyFile } from './policy-file.js';
import { replaceFile } from './replace-file.js';
import { makeDirectories, removeMadeDirectories } from './make-directories.js';
import { identityProblem } from '../agent-identity.js';
import { jsonLine } from './json-line.js';
import { ParentChannel } from './parent-channel.js';

const COMMAND = 'proxy';

export async function proxyCommand(args: readonly string[], io: CliIo): Promise<number> {
  const options = parseOptions(COMMAND, args, {
    single: [
      'policy',
      'listen',
      'evidence-dir',
      'signing-key',
      'identity',
      'upstream-ca',
      'ca-cert',
      'run-capsule-sha256',
    ],
    repeatable: ['resolve'],
    flags: ['listen-inherited'],
  });
  const policyFile = requireOption(options, 'policy');
  const listen = listenTarget(options);
  const evidenceDir = resolve(requireOption(options, 'evidence-dir'));
  const signingKey = optionValue(options, 'signing-key');
  const identity = optionValue(options, 'identity') ?? 'anonymous';
  const wrongIdentity = identityProblem(identity);
  if (wrongIdentity !== undefined) throw new UsageError(`${COMMAND}: --identity: ${wrongIdentity}`);
  const capsule = optionValue(options, 'run-capsule-sha256');
  if (capsule !== undefined && !/^[0-9a-f]{64}$/.test(capsule))
    throw new UsageError(`${COMMAND}: --run-capsule-sha256 takes 64 lowercase hex digits`);
  const pins = parseNamePins(options.values.get('resolve') ?? []);
  if (typeof pins === 'string') throw new UsageError(`${COMMAND}: --resolve ${pins}`);

  let policyBytes: Uint8Array;
  try {
    policyBytes = await readPolicyFile(policyFile);
  } catch (error) {
    io.err(
      `pipelock-egress ${COMMAND}: cannot read the policy ${policyFile}: ${(error as Error).message}; give --policy a readable policy file\n`,
    );
    return 1;
  }
  const policy = parsePolicy(policyBytes, policyFile);
  if (!policy.ok) {
    for (const error of policy.errors) io.err(`${formatPolicyError(error)}\n`);
    return 1;
  }
  let secretSource: NodeJS.ProcessEnv;
  try {
    secretSource = listen instanceof ParentChannel ? await inheritedSecrets(listen) : process.env;
  } catch (error) {
    io.err(`pipelock-egress ${COMMAND}: ${(error as Error).message}\n`);
    return 1;
  }
  const secretValues = engineSecretValues(
    policy.policy,
    secretSource,
    io,
    `pipelock-egress ${COMMAND}`,
  );
  if (secretValues === undefined) return 1;
  const backend = createNodeBackend();
  let seed: Uint8Array = randomBytes(32);
  if (signingKey !== undefined) {
    try {
      seed = await resolvePrivateKey(signingKey, backend);
    } catch (error) {
      if (!(error instanceof KeyArgumentError)) throw error;
      throw new UsageError(`${COMMAND}: --signing-key: ${error.message}`);
    }
  }
  const caFile = optionValue(options, 'upstream-ca');
  const extraCa = caFile === undefined ? undefined : await readUpstreamCa(io, caFile);
  if (extraCa?.ok === false) {
    io.err(`pipelock-egress ${COMMAND}: ${extraCa.problem}\n`);
    return 1;
  }
  const systemCa = await readSystemCaBundle();
  if (systemCa?.ok === false) {
    io.err(`pipelock-egress ${COMMAND}: ${systemCa.problem}\n`);
    return 1;
  }
  const upstreamCa = [systemCa, extraCa].flatMap((ca) => (ca?.ok ? [ca.pem] : []));

  // Installed before any evidence is written: a stop that comes before the listener takes the
  // start back, one after it seals. A supervisor that hands over the listener and then goes
  // away counts as a stop, too. A second Ctrl-C or SIGTERM must not end the process before it
  // has sealed (the engine's shutdown is bounded).
  let stopped: ((signal: NodeJS.Signals) => void) | undefined;
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => (stopped = resolve));
  const stop = (signal: NodeJS.Signals): void => {
    if (stopped === undefined) {
      io.err(`pipelock-egress ${COMMAND}: ${signal}: already stopping; sealing the evidence\n`);
      return;
    }
    stopped(signal);
    stopped = undefined;
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const onParentGone = () => stop('SIGTERM');
  if (listen instanceof ParentChannel) process.once('disconnect', onParentGone);
  try {
    let madeDirs: string[];
    try {
      madeDirs = await makeDirectories(evidenceDir, 0o700);
    } catch (error) {
      io.err(
        `pipelock-egress ${COMMAND}: cannot make the evidence directory ${evidenceDir}: ${(error as Error).message}\n`,
      );
      return 1;
    }
    let opened: ReturnType<typeof EvidenceWriter.open>;
    try {
      opened = EvidenceWriter.open({
        dir: evidenceDir,
        backend,
        seed,
        run: {
          actor: identity,
          policyHash: policy.policy.hash,
          ...(capsule === undefined ? {} : { postureCapsuleSha256: capsule }),
        },
      });
    } catch (error) {
      // Evidence that cannot be continued, or a directory that is not writable, is the operator's to fix.
      await removeMadeDirectories(madeDirs);
      io.err(`pipelock-egress ${COMMAND}: ${(error as Error).message}\n`);
      return 1;
    }
    const { writer, resumed } = opened;
    /** A start that fails before any traffic leaves the directory as it found it. */
    const takeBack = async () => {
      writer.withdraw();
      await removeMadeDirectories(madeDirs);
    };
    // The CA key never leaves this process; only its certificate is written, for the agent's trust store.
    const ca = RunCertificateAuthority.create();
    // Unless --ca-cert says otherwise, beside the evidence (it ends up in the packet's evidence/).
    const caCert = optionValue(options, 'ca-cert') ?? join(evidenceDir, RUN_CA_FILE);
    // Written once the listener is open, so a start that fails leaves what was there; where it
    // goes is checked now, for the common mistake of a directory that is not there.
    try {
      await access(dirname(caCert), constants.W_OK);
    } catch (error) {
      await takeBack();
      io.err(
        `pipelock-egress ${COMMAND}: cannot write the run CA certificate to ${caCert}: ${(error as Error).message}\n`,
      );
      return 1;
    }
    if (resumed) {
      io.err(
        jsonLine({
          event: 'resumed',
          evidence_dir: evidenceDir,
          receipts: resumed.receiptCount,
          final_seq: Number(resumed.finalSeq),
          torn_line_moved_to: resumed.tornFile ?? null,
        }),
      );
    }
    const engine = new Engine({
      policy: policy.policy,
      log: writer,
      resolver: createResolver(pins),
      ca,
      secretValues,
      version: packageJson.version,
      upstreamCa,
      onDecision: (entry) =>
        io.err(
          jsonLine({
            event: 'decision',
            verdict: entry.verdict,
            method: entry.method,
            target: entry.target,
            layer: entry.layer,
            reason: entry.pattern,
            request_id: entry.requestId,
          }),
        ),
      onEvidenceError: (error) =>
        io.err(jsonLine({ event: 'evidence_error', message: error.message })),
      onInternalError: (message) => io.err(jsonLine({ event: 'engine_error', message })),
    });
    /** The listener `run` hands over, or undefined when a stop comes first. */
    const handedOver = (parent: ParentChannel) =>
      Promise.race([
        inheritedListener(parent).then((handle) => ({ handle })),
        stopSignal.then(() => undefined),
      ]);
    let address: { host: string; port: number };
    try {
      const target = listen instanceof ParentChannel ? await handedOver(listen) : listen;
      // Stopped before a listener was handed over: nothing was served, nothing is kept.
      if (target === undefined) {
        await takeBack();
        return 0;
      }
      address = await engine.listen(target);
    } catch (error) {
      await takeBack();
      const where = listen instanceof ParentChannel ? 'the inherited listener' : listenText(listen);
      io.err(
        `pipelock-egress ${COMMAND}: cannot listen on ${where}: ${(error as Error).message}\n`,
      );
      return 1;
    }
    try {
      await replaceFile(caCert, ca.certificatePem, 0o644);
    } catch (error) {
      // Past the listener's opening a request may have been recorded: the chain is left
      // unsealed, and a start on the same directory continues it.
      await engine.close();
      writer.abandon();
      io.err(
        `pipelock-egress ${COMMAND}: cannot put the run CA certificate at ${caCert}: ${(error as Error).message}\n`,
      );
      return 1;
    }
    io.out(
      jsonLine({
        event: 'listening',
        url: `http://${listenText(address)}`,
        ca_cert: caCert,
        policy_hash: policy.policy.hash,
        signer_key: writer.signerKey,
        evidence_dir: evidenceDir,
      }),
    );

    const signal = await stopSignal;
    await engine.close();
    let sealed: SealSummary;
    try {
      sealed = writer.seal(signal === 'SIGINT' ? 'interrupted' : 'normal');
    } catch (error) {
      writer.abandon();
      io.err(
        `pipelock-egress ${COMMAND}: the evidence could not be sealed: ${(error as Error).message}; the files in ${evidenceDir} hold an unsealed chain, every complete line of which still verifies\n`,
      );
      return 1;
    }
    io.out(
      jsonLine({
        event: 'sealed',
        receipts: sealed.receiptCount,
        final_seq: Number(sealed.finalSeq),
        root_hash: sealed.rootHash,
        files: sealed.files,
      }),
    );
    return 0;
  } finally {
    process.off('SIGTERM', stop).off('SIGINT', stop).off('disconnect', onParentGone);
  }
}

/** The address to listen on, or the parent (`run`) that passes the listener and the bound secrets. */
function listenTarget(options: ParsedOptions): { host: string; port: number } | ParentChannel {
  const listen = optionValue(options, 'listen');
  const inherited = options.flags.has('listen-inherited');
  if (inherited && listen !== undefined) {
    throw new UsageError(`${COMMAND}: give either --listen or --listen-inherited, not both`);
  }
  if (inherited) {
    if (process.send === undefined) {
      throw new UsageError(
        `${COMMAND}: --listen-inherited needs a parent that passes the listening socket over Node IPC (pipelock-egress run does)`,
      );
    }
    return new ParentChannel();
  }
  // The engine is an open relay to whatever the policy allows.
  return loopbackListen(COMMAND, 'the proxy', requireOption(options, 'listen'));
}

/** The listening socket `run` opened inside the agent's namespace, passed over IPC as a bare handle. */
async function inheritedListener(parent: ParentChannel): Promise<object> {
  const { handle } = await parent.next('listener', 'a listening socket');
  if (typeof handle !== 'object' || handle === null)
    throw new Error('the parent passed no listening socket');
  return handle;
}

/**
 * The bound secrets' values, from `run` over IPC: in the environment, a name the engine's own
 * runtime reads (NODE_OPTIONS, LD_PRELOAD) would configure it.
 */
async function inheritedSecrets(parent: ParentChannel): Promise<Record<string, string>> {
  const { message } = await parent.next('secrets', 'the bound secrets');
  const { values } = message;
  if (
    typeof values !== 'object' ||
    values === null ||
    Object.values(values).some((value) => typeof value !== 'string')
  )
    throw new Error('the parent passed bound secrets that are not names and string values');
  return { ...(values as Record<string, string>) };
}

function requireOption(options: ParsedOptions, name: string): string {
  const value = optionValue(options, name);
  if (value === undefined) throw new UsageError(`${COMMAND}: --${name} is required`);
  return value;
}
