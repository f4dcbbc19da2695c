/** The action's inputs (action.yml), in the order the runner documents them. */
export const INPUT_NAMES = [
  'agent-script',
  'agent-args',
  'policy-config',
  'enforcement-binary',
  'pipelock-version',
  'pipelock-sha256',
  'pipelock-download-url',
  'evidence-output',
  'signing-key',
  'public-key',
  'agent-identity',
  'working-directory',
  'fail-on-verifier-error',
  'upload-artifact',
  'artifact-name',
  'job-summary',
  'writable-paths',
  'resolve',
  'upstream-ca',
] as const;

export type InputName = (typeof INPUT_NAMES)[number];
export type RawInputs = Readonly<Record<InputName, string>>;

/** action.yml's defaults, applied when the runner did not (a step run by hand, local runs). */
export const INPUT_DEFAULTS: Readonly<Partial<Record<InputName, string>>> = {
  'evidence-output': 'audit-artifacts',
  'agent-identity': 'github-actions-agent',
  'working-directory': '.',
  'fail-on-verifier-error': 'true',
  'upload-artifact': 'true',
  'artifact-name': 'audit-packet',
  'job-summary': 'true',
};
