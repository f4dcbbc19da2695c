import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/io.js';
import { parseRunRequest } from '../../src/cli/run-request.js';
import { createNodeBackend } from '../../src/receipts/node-backend.js';
import { scratchDir } from '../scratch.js';

// parseRunRequest only reads: nothing on the machine changes, whatever it is given.
const dir = scratchDir('run-request-');
writeFileSync(join(dir, 'policy.yaml'), 'version: "1.0"\negress:\n  - destination: "a.test"\n');
writeFileSync(join(dir, 'agent.sh'), 'true\n');
const io = { out: () => undefined, err: () => undefined, readFile: (p: string) => readFile(p) };

/** `run` of agent.sh under policy.yaml, in `dir`, with these --resolve pins. */
function runWithPins(...pins: string[]) {
  const resolve = pins.flatMap((pin) => ['--resolve', pin]);
  return parseRunRequest(
    ['--policy', join(dir, 'policy.yaml'), ...resolve, '--', 'agent.sh'],
    io,
    createNodeBackend(),
    dir,
  );
}

test('run --resolve: a pin is checked as the proxy checks it', async () => {
  assert.deepEqual((await runWithPins('a.test:127.0.0.1')).pins, ['a.test:127.0.0.1']);
  await assert.rejects(runWithPins('a.test:127.1'), (error: Error) => {
    assert.ok(error instanceof UsageError);
    assert.match(
      error.message,
      /^run: --resolve "127\.1" is read as the IPv4 address 127\.0\.0\.1 .*; write the address in dotted decimal, "127\.0\.0\.1" or the one you meant$/,
    );
    return true;
  });
});
