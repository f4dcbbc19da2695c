// Verification failures as values: a class a program can branch on and a message a person can act on.

export type FailureClass =
  /** Not valid JSON, or not the shape of a receipt / recorder entry (unknown key, wrong type). */
  | 'malformed'
  /** Well-formed, but a field breaks the action record rules (version, required fields). */
  | 'invalid_record'
  /** The Ed25519 signature, its encoding or the signer key encoding is wrong. */
  | 'signature'
  /** Correctly signed by a key that is not trusted. */
  | 'untrusted_key'
  /** Hash links or sequence numbers do not line up (reorder, insertion, deletion, edit). */
  | 'chain'
  /** The first receipt's genesis (`genesis` / bound `g1:`) or a restart binding is wrong. */
  | 'genesis'
  /** A key rotation boundary or rotation endorsement does not hold. */
  | 'rotation'
  /** Session open / heartbeat / close receipts contradict the chain. */
  | 'lifecycle'
  /** Nothing to verify. */
  | 'empty';

export interface Failure {
  readonly class: FailureClass;
  readonly message: string;
  /** The chain_seq of the receipt it is about, when that much of it could be read. */
  readonly seq?: bigint;
}

export type Outcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: Failure };

export function fail(cls: FailureClass, message: string): { ok: false; failure: Failure } {
  return { ok: false, failure: { class: cls, message } };
}

/** Go's %q for the strings that appear in Pipelock error texts. */
export function goQuote(value: string): string {
  return JSON.stringify(value);
}
