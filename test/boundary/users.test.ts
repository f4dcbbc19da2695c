// Accounts made for real (root): a throwaway name, never the boundary's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ensureAccount, removeAccount } from '../../src/boundary/users.js';

const NAME = 'pipelock-unit-acct';

const exists = (): boolean => {
  try {
    execFileSync('id', [NAME], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

test('an account is claimed before it is made, and only when this call makes it', async () => {
  await removeAccount(NAME);
  try {
    const claimed: boolean[] = [];
    const made = await ensureAccount(NAME, async () => {
      claimed.push(exists());
    });
    assert.deepEqual(claimed, [false], 'claimed once, before useradd');
    assert.equal(made.created, true);
    assert.ok(exists());
    const again = await ensureAccount(NAME, async () => {
      claimed.push(exists());
    });
    assert.equal(again.created, false);
    assert.equal(again.uid, made.uid);
    assert.deepEqual(claimed, [false], 'an existing account is not claimed');
  } finally {
    await removeAccount(NAME);
  }
  assert.ok(!exists());
});
