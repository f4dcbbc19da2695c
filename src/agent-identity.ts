// The agent identity every receipt names as its actor: one line a reviewer reads, so no
// control character (a newline would forge a second line in a summary or a log).

const MAX_IDENTITY_CHARS = 128;

/** What is wrong with an identity, or undefined. */
export function identityProblem(value: string): string | undefined {
  if (value === '') return 'the agent identity is required';
  const control = [...value].some(
    (char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f,
  );
  if (value.length > MAX_IDENTITY_CHARS || control)
    return `expected at most ${MAX_IDENTITY_CHARS} characters without control characters`;
  return undefined;
}
