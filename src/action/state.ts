/** Keys of the state that main saves for post (GITHUB_STATE). */
export const STATE_KEYS = {
  boundaryRunId: 'boundary-run-id',
  /** "true" when main ran as root (post then needs no sudo). */
  asRoot: 'as-root',
} as const;
