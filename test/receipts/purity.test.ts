// The receipts core must run in a browser: only node-backend.ts may import Node modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const coreDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/receipts');

test('no receipts module but node-backend.ts imports a Node built-in or a package', () => {
  for (const file of readdirSync(coreDir).filter(
    (f) => f.endsWith('.ts') && f !== 'node-backend.ts',
  )) {
    const source = readFileSync(path.join(coreDir, file), 'utf8');
    for (const match of source.matchAll(/from '([^']+)'/g)) {
      assert.ok(match[1]?.startsWith('./'), `${file} imports ${match[1]}`);
    }
    assert.doesNotMatch(source, /\bBuffer\b|\bprocess\./, file);
  }
});
