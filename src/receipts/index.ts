// Public surface of the receipts core (pure; pair it with createNodeBackend from node-backend.js
// in Node, or any other CryptoBackend elsewhere).
export type {
  ActionRecord,
  SessionOpen,
  SessionHeartbeat,
  SessionClose,
  SessionControl,
  KeyTransition,
} from './action-record.js';
export { ACTION_TYPES, canonicalActionRecord } from './action-record.js';
export type {
  BuiltReceipt,
  ReceiptFields,
  SessionOpenFields,
  HeartbeatFields,
  CloseFields,
} from './builder.js';
export { ReceiptChainBuilder } from './builder.js';
export type { ChainOptions, ChainReport, ChainSegment } from './chain.js';
export { ChainVerifier, DEFAULT_SESSION_ID, verifyChain } from './chain.js';
export type { CryptoBackend } from './crypto.js';
export type { RotationEndorsement } from './endorsement.js';
export {
  encodeRotationEndorsement,
  parseRotationEndorsement,
  verifyRotationEndorsement,
} from './endorsement.js';
export type {
  Evidence,
  EvidenceFile,
  EvidenceOptions,
  EvidenceReport,
  TornTail,
} from './evidence.js';
export {
  EvidenceVerifier,
  evidenceFileOrder,
  MAX_LINE_BYTES,
  MAX_SHARD_BYTES,
  MAX_SHARDS,
  readEvidence,
  readEvidenceDirectory,
  splitJsonl,
  verifyEvidence,
} from './evidence.js';
export type { EvidenceShape } from './evidence-stream.js';
export { EvidenceStream } from './evidence-stream.js';
export { verifyEvidenceReceiptV2 } from './evidence-v2.js';
export type { Failure, FailureClass, Outcome } from './failure.js';
export { sessionOpenGenesis } from './genesis.js';
export { goTimestamp } from './go-time.js';
export {
  encodePipelockPrivateKey,
  encodePipelockPublicKey,
  encodePrivateKeyPem,
  encodePublicKeyPem,
  parsePrivateKey,
  parsePublicKey,
  publicKeyHex,
} from './keys.js';
export type { Receipt } from './receipt.js';
export { encodeReceipt, parseReceipt, receiptHash, verifyReceipt } from './receipt.js';
export type { RecorderEntry, Checkpoint, TranscriptRoot } from './recorder.js';
export { entryHash, parseEntryLine, verifyEntryChain } from './recorder.js';
export type { RecorderSummary } from './recorder-verifier.js';
export { RecorderWriter } from './recorder-writer.js';
