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
export { DEFAULT_SESSION_ID, verifyChain } from './chain.js';
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
  RecorderSummary,
} from './evidence.js';
export {
  evidenceFileOrder,
  readEvidence,
  readEvidenceDirectory,
  splitJsonl,
  verifyEvidence,
} from './evidence.js';
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
export { RecorderWriter } from './recorder-writer.js';
