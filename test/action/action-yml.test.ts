import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { INPUT_DEFAULTS, INPUT_NAMES } from '../../src/action/input-names.js';

interface ActionYml {
  inputs: Record<string, { description: string; required: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string; post: string };
}

const actionYml = parse(await readFile('action.yml', 'utf8')) as ActionYml;

test('action.yml declares exactly the inputs the code reads, in the same order', () => {
  assert.deepEqual(Object.keys(actionYml.inputs), [...INPUT_NAMES]);
});

test('the defaults the code applies for runs by hand equal action.yml', () => {
  for (const name of INPUT_NAMES) {
    const declared = actionYml.inputs[name]?.default ?? '';
    assert.equal(INPUT_DEFAULTS[name] ?? '', declared, name);
  }
});

test('only agent-script and policy-config are required, and every input is described', () => {
  const required = Object.entries(actionYml.inputs)
    .filter(([, input]) => input.required)
    .map(([name]) => name);
  assert.deepEqual(required, ['agent-script', 'policy-config']);
  for (const [name, input] of Object.entries(actionYml.inputs))
    assert.ok(input.description.length > 20, name);
});

test('outputs are the DESIGN §8 set', () => {
  assert.deepEqual(Object.keys(actionYml.outputs), [
    'audit-packet-path',
    'receipt-count',
    'verifier-verdict',
    'allowed-count',
    'blocked-count',
    'policy-hash',
    'agent-exit-code',
    'artifact-id',
  ]);
});

test('runs on node24 from the committed bundles', () => {
  assert.deepEqual(actionYml.runs, { using: 'node24', main: 'dist/main.js', post: 'dist/post.js' });
});
