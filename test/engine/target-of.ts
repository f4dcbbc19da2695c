import { parseRequestTarget, type RequestTarget } from '../../src/policy/target.js';

/** The request target of a URL the test knows to be valid. */
export function targetOf(url: string): RequestTarget {
  const parsed = parseRequestTarget(url);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.target;
}
