// `verify`: offline verification of a receipt chain, with Pipelock's CHAIN VALID / CHAIN BROKEN
// output, our verdicts (valid, self_consistent_only, invalid, error) and verification-report.json;
// with --packet, of a whole Audit Packet (verify-packet.ts).
import { writeFile } from 'node:fs/promises';
import { makeDirectories } from './make-directories.js';
import { InputError, readInputText } from './input-file.js';
import { loadPolicyHash } from './policy-hash-file.js';
import path from 'node:path';
import { parseRotationEndorsement, type RotationEndorsement } from '../receipts/index.js';
import { createNodeBackend } from '../receipts/node-backend.js';
import { UnreadableEvidence, verifyEvidencePath } from './evidence-source.js';
import { type CliIo, UsageError } from './io.js';
import { optionValue, parseOptions } from './options.js';
import { KeyArgumentError, resolvePublicKey } from './key-argument.js';
import { judgeEvidence } from './judge.js';
import { PREFIX, verifyPacket, type PacketRequest } from './verify-packet.js';
import { describeChain } from './chain-text.js';
import { reportOutputProblem } from './report-output.js';
import {
  encodeVerificationReport,
  verificationReport,
  type VerificationReport,
} from './verification-report.js';

interface ChainRequest {
  readonly kind: 'chain';
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

interface PacketFileRequest extends PacketRequest {
  readonly kind: 'packet';
  readonly output: string | undefined;
}

type VerifyRequest = ChainRequest | PacketFileRequest;

/** What --packet takes from the packet itself. */
const PACKET_OWN: Readonly<Record<string, string>> = {
  'receipt-chain': "the chain is the packet's evidence.jsonl",
  'session-id': 'a packet holds one recorder session',
  'rotation-endorsement': 'a run signs with one key',
};

function parseRequest(args: readonly string[]): VerifyRequest {
  const options = parseOptions('verify', args, {
    single: ['receipt-chain', 'packet', 'policy-hash', 'output', 'session-id'],
    repeatable: ['public-key', 'rotation-endorsement'],
    flags: ['allow-unpinned', 'require-sealed', 'whole-recorder'],
  });
  const keyArgs = options.values.get('public-key') ?? [];
  const packet = optionValue(options, 'packet');
  if (packet !== undefined) {
    const given = Object.keys(PACKET_OWN).find((name) => options.values.has(name));
    if (given !== undefined)
      throw new UsageError(`verify: --${given} does not go with --packet: ${PACKET_OWN[given]}`);
    return {
      kind: 'packet',
      dir: packet,
      keyArgs,
      allowUnpinned: options.flags.has('allow-unpinned'),
      policyHashFile: optionValue(options, 'policy-hash'),
      output: optionValue(options, 'output'),
    };
  }
  const chainPath = optionValue(options, 'receipt-chain');
  if (chainPath === undefined)
    throw new UsageError('verify: --receipt-chain PATH (or --packet DIR) is required');
  const endorsementFiles = options.values.get('rotation-endorsement') ?? [];
  if (endorsementFiles.length > 0 && keyArgs.length === 0) {
    throw new UsageError(
      'verify: --rotation-endorsement needs --public-key: an endorsement only extends a pinned root key',
    );
  }
  return {
    kind: 'chain',
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

/** The paths verify reads (a key argument may be the key itself: then it names no file). */
function inputsOf(request: VerifyRequest): string[] {
  const own =
    request.kind === 'packet' ? [request.dir] : [request.chainPath, ...request.endorsementFiles];
  return [
    ...own,
    ...request.keyArgs,
    ...(request.policyHashFile === undefined ? [] : [request.policyHashFile]),
  ];
}

async function loadEndorsement(file: string, io: CliIo): Promise<RotationEndorsement> {
  const parsed = parseRotationEndorsement(await readInputText(file, 'rotation endorsement', io));
  if (!parsed.ok) throw new InputError(`${file}: ${parsed.failure.message}`);
  return parsed.value;
}

interface Verified {
  readonly code: number;
  readonly report: VerificationReport;
}

async function verifyChain(request: ChainRequest, io: CliIo): Promise<Verified> {
  try {
    const trustedKeys = await Promise.all(request.keyArgs.map((k) => resolvePublicKey(k)));
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
    io.out(describeChain(label, report, judged, expectedPolicy));
    return {
      code: judged.code,
      report: verificationReport(judged.verdict, report, judged.policyHashMatch, judged.error),
    };
  } catch (error) {
    if (
      !(error instanceof InputError) &&
      !(error instanceof KeyArgumentError) &&
      !(error instanceof UnreadableEvidence)
    ) {
      throw error;
    }
    io.err(`${PREFIX}: ${error.message}\n`);
    return { code: 2, report: verificationReport('error', undefined, null, error.message) };
  }
}

export async function verifyCommand(args: readonly string[], io: CliIo): Promise<number> {
  const request = parseRequest(args);
  if (request.output !== undefined) {
    const packet = request.kind === 'packet' ? request.dir : undefined;
    const problem = await reportOutputProblem(request.output, inputsOf(request), packet);
    if (problem !== undefined) {
      io.err(`${PREFIX}: ${problem}\n`);
      return 2;
    }
  }
  const { code, report } =
    request.kind === 'packet' ? await verifyPacket(request, io) : await verifyChain(request, io);
  if (report.verdict === 'self_consistent_only') {
    io.err(
      request.allowUnpinned
        ? `${PREFIX}: accepted without a pinned key (--allow-unpinned): the ${request.kind} is only self-consistent\n`
        : `${PREFIX}: no --public-key given: the ${request.kind} is only self-consistent, anyone could have signed it; pin the signer key, or pass --allow-unpinned to accept that\n`,
    );
  }
  if (request.output === undefined) return code;
  try {
    await makeDirectories(path.dirname(request.output), 0o755);
    await writeFile(request.output, encodeVerificationReport(report));
  } catch (error) {
    io.err(`${PREFIX}: cannot write ${request.output}: ${(error as Error).message}\n`);
    return 2;
  }
  return code;
}
