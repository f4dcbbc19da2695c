// `verify`: offline verification of a receipt chain, with Pipelock's CHAIN VALID / CHAIN BROKEN
// output, our verdicts (valid, self_consistent_only, invalid, error) and verification-report.json.
import { stat, writeFile } from 'node:fs/promises';
import { makeDirectories } from './make-directories.js';
import path from 'node:path';
import {
  parseRotationEndorsement,
  type EvidenceReport,
  type RotationEndorsement,
} from '../receipts/index.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { UnreadableEvidence, verifyEvidencePath } from './evidence-source.js';
import { type CliIo, UsageError } from './io.js';
import { optionValue, parseOptions } from './options.js';
import { KeyArgumentError, resolvePublicKey } from './key-argument.js';
import { judgeEvidence, type Judgement } from './judge.js';
import {
  encodeVerificationReport,
  verificationReport,
  type VerificationReport,
} from './verification-report.js';

interface VerifyRequest {
  readonly chainPath: string;
  readonly keyArgs: readonly string[];
  readonly endorsementFiles: readonly string[];
  readonly policyHashFile: string | undefined;
  readonly output: string | undefined;
  readonly sessionId: string | undefined;
  readonly allowUnpinned: boolean;
  readonly requireSealed: boolean;
  readonly wholeRecorder: boolean;
}

/** An input other than the evidence itself could not be used (exit 2). */
class InputError extends Error {}

function parseRequest(args: readonly string[]): VerifyRequest {
  const options = parseOptions('verify', args, {
    single: ['receipt-chain', 'policy-hash', 'output', 'session-id'],
    repeatable: ['public-key', 'rotation-endorsement'],
    flags: ['allow-unpinned', 'require-sealed', 'whole-recorder'],
  });
  const chainPath = optionValue(options, 'receipt-chain');
  if (chainPath === undefined) throw new UsageError('verify: --receipt-chain PATH is required');
  const keyArgs = options.values.get('public-key') ?? [];
  const endorsementFiles = options.values.get('rotation-endorsement') ?? [];
  if (endorsementFiles.length > 0 && keyArgs.length === 0) {
    throw new UsageError(
      'verify: --rotation-endorsement needs --public-key: an endorsement only extends a pinned root key',
    );
  }
  return {
    chainPath,
    keyArgs,
    endorsementFiles,
    policyHashFile: optionValue(options, 'policy-hash'),
    output: optionValue(options, 'output'),
    sessionId: optionValue(options, 'session-id'),
    allowUnpinned: options.flags.has('allow-unpinned'),
    requireSealed: options.flags.has('require-sealed'),
    wholeRecorder: options.flags.has('whole-recorder'),
  };
}

async function readText(file: string, what: string, io: CliIo): Promise<string> {
  // A FIFO or a device would be read for ever.
  if ((await stat(file).catch(() => undefined))?.isFile() === false)
    throw new InputError(`cannot read ${what} ${file}: not a regular file`);
  try {
    return new TextDecoder().decode(await io.readFile(file));
  } catch (error) {
    throw new InputError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

async function loadEndorsement(file: string, io: CliIo): Promise<RotationEndorsement> {
  const parsed = parseRotationEndorsement(await readText(file, 'rotation endorsement', io));
  if (!parsed.ok) throw new InputError(`${file}: ${parsed.failure.message}`);
  return parsed.value;
}

async function loadPolicyHash(file: string, io: CliIo): Promise<string> {
  const hash = (await readText(file, 'policy hash', io)).trim();
  if (hash === '') throw new InputError(`policy hash file ${file} is empty`);
  // The policy itself given by mistake: say so, rather than compare (and print) all of it.
  const lines = hash.split('\n').length;
  if (lines > 1)
    throw new InputError(
      `policy hash file ${file} holds ${lines} lines, not one hash: give the policy's hash (policy-hash.txt, or the first field of sha256sum POLICY)`,
    );
  return hash;
}

export async function verifyCommand(args: readonly string[], io: CliIo): Promise<number> {
  const request = parseRequest(args);
  const finish = async (report: VerificationReport, code: number): Promise<number> => {
    if (request.output === undefined) return code;
    try {
      await makeDirectories(path.dirname(request.output), 0o755);
      await writeFile(request.output, encodeVerificationReport(report));
    } catch (error) {
      io.err(
        `pipelock-egress verify: cannot write ${request.output}: ${(error as Error).message}\n`,
      );
      return 2;
    }
    return code;
  };
  try {
    const trustedKeys = await Promise.all(request.keyArgs.map((k) => resolvePublicKey(k, io)));
    const endorsements = await Promise.all(
      request.endorsementFiles.map((f) => loadEndorsement(f, io)),
    );
    const expectedPolicy =
      request.policyHashFile === undefined
        ? undefined
        : await loadPolicyHash(request.policyHashFile, io);
    const { label, report } = await verifyEvidencePath(createNodeBackend(), request.chainPath, {
      trustedKeys,
      endorsements,
      wholeRecorder: request.wholeRecorder,
      ...(request.sessionId === undefined ? {} : { sessionId: request.sessionId }),
    });
    const judged = judgeEvidence(report, { ...request, expectedPolicy });
    io.out(describe(label, report, judged, expectedPolicy));
    if (judged.verdict === 'self_consistent_only') {
      io.err(
        request.allowUnpinned
          ? 'pipelock-egress verify: accepted without a pinned key (--allow-unpinned): the chain is only self-consistent\n'
          : 'pipelock-egress verify: no --public-key given: the chain is only self-consistent, anyone could have signed it; pin the signer key, or pass --allow-unpinned to accept that\n',
      );
    }
    return await finish(
      verificationReport(judged.verdict, report, judged.policyHashMatch, judged.error),
      judged.code,
    );
  } catch (error) {
    if (
      !(error instanceof InputError) &&
      !(error instanceof KeyArgumentError) &&
      !(error instanceof UnreadableEvidence)
    ) {
      throw error;
    }
    io.err(`pipelock-egress verify: ${error.message}\n`);
    return finish(verificationReport('error', undefined, null, error.message), 2);
  }
}

function describe(
  label: string,
  report: EvidenceReport,
  judged: Judgement,
  expectedPolicy: string | undefined,
): string {
  if (report.error?.class === 'empty') return `No receipts found in ${label}\n`;
  if (!report.valid || judged.unsealed) {
    const lines = [`CHAIN BROKEN: ${label}`, `  Error:    ${judged.error ?? ''}`];
    if (report.broken_at_seq !== undefined) lines.push(`  Broke at: seq ${report.broken_at_seq}`);
    lines.push('  Sealed:   no');
    return `${lines.join('\n')}\n`;
  }
  const lines = [
    `${report.pinned ? 'CHAIN VALID' : 'CHAIN UNPINNED'}: ${label}`,
    `  Receipts:  ${report.receipt_count}`,
    `  Final seq: ${report.final_seq ?? ''}`,
    `  Root hash: ${report.root_hash ?? ''}`,
    `  Start:     ${report.start_time ?? ''}`,
    `  End:       ${report.end_time ?? ''}`,
  ];
  if (report.segments.length <= 1) {
    lines.push(`  Signer:    ${report.signer_keys[0] ?? ''}`);
  } else {
    lines.push(`  Segments:  ${report.segments.length} (signing key rotated)`);
    report.segments.forEach((s, i) =>
      lines.push(
        `    segment ${i + 1}: seq ${s.first_seq}-${s.last_seq}  signer ${s.signer_key}${i > 0 ? '  (key rotation)' : ''}`,
      ),
    );
  }
  lines.push(`  Sealed:    ${report.sealed ? 'yes' : 'no'}`);
  if (report.torn_tail) {
    lines.push(
      `  Torn tail: ${report.torn_tail.where} (${report.torn_tail.bytes} bytes of a line the writer did not finish; not verified)`,
    );
  }
  if (judged.policyHashMatch === false) {
    lines.push(
      `POLICY MISMATCH: receipts carry policy_hash ${report.policy_hashes.join(', ')}; expected ${expectedPolicy ?? ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
