// The action's main step: validate everything, then run the agent in the boundary.

import { readFile } from 'node:fs/promises';
import { formatPolicyError, parsePolicy } from '../policy/index.js';
import { existingDirectory, fileInside } from './files.js';
import { parseInputs } from './inputs.js';
import type { ActionRunner } from './runner.js';

export async function runMain(runner: ActionRunner): Promise<void> {
  try {
    await validateAndRun(runner);
  } catch (error) {
    runner.setFailed(error instanceof Error ? error.message : String(error));
  }
}

async function validateAndRun(runner: ActionRunner): Promise<void> {
  if (runner.platform !== 'linux') {
    throw new Error(
      `Linux runners only: this runner is ${runner.platform}. The boundary needs Linux network namespaces and iptables, so the agent was not run (it never runs unprotected).`,
    );
  }
  const parsed = parseInputs(runner.readInputs());
  if (!parsed.ok)
    throw new Error(`invalid inputs; nothing was started:\n${parsed.errors.join('\n')}`);
  const { inputs } = parsed;

  const workdir = await existingDirectory(inputs['working-directory'], 'working-directory');
  await fileInside(workdir, inputs['agent-script'], 'agent-script');
  const policyPath = await fileInside(workdir, inputs['policy-config'], 'policy-config');
  const policy = parsePolicy(await readFile(policyPath), inputs['policy-config']);
  if (!policy.ok) {
    throw new Error(
      `input policy-config: the policy is invalid; nothing was started:\n${policy.errors.map(formatPolicyError).join('\n')}`,
    );
  }
  runner.info(
    `policy ${inputs['policy-config']} is valid (sha256 ${policy.policy.hash}, ${policy.policy.egress.length} egress rules)`,
  );
  runner.setOutput('policy-hash', policy.policy.hash);

  if (inputs['enforcement-binary'] !== undefined || inputs['pipelock-version'] !== undefined) {
    const input =
      inputs['enforcement-binary'] !== undefined ? 'enforcement-binary' : 'pipelock-version';
    throw new Error(
      `not available yet: driving an external pipelock (input ${input}) has not landed; remove ${input} to use the built-in engine`,
    );
  }
  throw new Error(
    'not available yet: running the agent script inside the boundary has not landed in this version; the inputs and the policy were validated and nothing was run',
  );
}
