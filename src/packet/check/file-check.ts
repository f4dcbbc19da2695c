// One file of an Audit Packet as read, and what checking it against the verified chain found.

export type CheckStatus = 'ok' | 'mismatch' | 'missing' | 'unchecked';

export interface FileCheck {
  readonly file: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

/** A packet file as read: absent, present but unusable, or its value. */
export type FileFact<T> =
  | { readonly kind: 'missing' }
  | { readonly kind: 'unusable'; readonly error: string }
  | { readonly kind: 'read'; readonly value: T };

export function mapFact<T, U>(fact: FileFact<T>, read: (value: T) => FileFact<U>): FileFact<U> {
  return fact.kind === 'read' ? read(fact.value) : fact;
}

export function ok(file: string, detail: string): FileCheck {
  return { file, status: 'ok', detail };
}

export function mismatch(file: string, detail: string): FileCheck {
  return { file, status: 'mismatch', detail };
}

/** The check of a file that is missing or could not be used. */
export function unread(
  file: string,
  fact: Exclude<FileFact<unknown>, { kind: 'read' }>,
): FileCheck {
  if (fact.kind === 'missing') return { file, status: 'missing', detail: 'not in the packet' };
  return mismatch(file, fact.error);
}
