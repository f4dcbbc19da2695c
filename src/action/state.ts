/** Keys of the state that main saves for post (GITHUB_STATE). */
export const STATE_KEYS = {
  boundaryRunId: 'boundary-run-id',
  /** "true" when main ran as root (post then needs no sudo). */
  asRoot: 'as-root',
  /** main's own temporary directory (the agent's environment file, an inline key's file). */
  tempDir: 'temp-dir',
} as const;

/** The shape of main's temporary directory: post removes nothing else. */
export const TEMP_DIR_NAME = /^pipelock-egress-[A-Za-z0-9]{6}$/;
