/** Keys of the state that main saves for post (GITHUB_STATE). */
export const STATE_KEYS = {
  boundaryRunId: 'boundary-run-id',
} as const;
