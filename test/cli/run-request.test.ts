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

async function assertUsageError(request: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(request, (error: Error) => {
    assert.ok(error instanceof UsageError, error.message);
    assert.match(error.message, message);
    return true;
  });
}

test('run --resolve: a pin is checked as the proxy checks it', async () => {
  assert.deepEqual((await runWithPins('a.test:127.0.0.1')).pins, ['a.test:127.0.0.1']);
  await assertUsageError(
    runWithPins('a.test:127.1'),
    /^run: --resolve "127\.1" is read as the IPv4 address 127\.0\.0\.1 .*; write the address in dotted decimal, "127\.0\.0\.1" or the one you meant$/,
  );
});

test('run --resolve: one name pinned to two addresses is a usage error naming both', async () => {
  await assertUsageError(
    runWithPins('a.test:127.0.0.1', 'a.test:127.0.0.2'),
    /^run: --resolve a\.test:127\.0\.0\.1 and a\.test:127\.0\.0\.2 pin a\.test to two addresses; keep the one you mean$/,
  );
});
