import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE32_CLASSES,
  base64Runs,
  decodedViews,
  DecodingBudgetExceeded,
  HEX_CLASSES,
  singleCaseRuns,
} from '../../src/engine/dlp/decoded-views.js';
import { base32, noise } from './encodings.js';

const SECRET = 'agent-secret-5f2b9c1e7a';

const ENCODERS: Record<string, (bytes: Buffer) => string> = {
  base64: (bytes) => bytes.toString('base64'),
  base64url: (bytes) => bytes.toString('base64url'),
  'base32 upper': base32,
  'base32 lower': (bytes) => base32(bytes).toLowerCase(),
  'hex lower': (bytes) => bytes.toString('hex'),
  'hex upper': (bytes) => bytes.toString('hex').toUpperCase(),
};

test('a secret inside a larger encoded blob is decoded whatever precedes and follows it', () => {
  for (const [name, encode] of Object.entries(ENCODERS)) {
    for (let before = 0; before < 8; before++) {
      for (const after of ['', '\n', 'xyz']) {
        // The blob follows other text in the same run: a path, a key, a prefix of its own.
        const blob = encode(Buffer.concat([noise(before), Buffer.from(SECRET + after)]));
        const text = `{"path":"/upload/${blob}"}`;
        const decoded = decodedViews([{ text, where: 'body' }]);
        assert.ok(
          decoded.some((view) => view.text.includes(SECRET)),
          `${name}, ${before} bytes before, ${JSON.stringify(after)} after: ${blob}`,
        );
        assert.ok(decoded.every((view) => view.where.startsWith('body (')));
      }
    }
  }
});

test('runs: lines of one width, the last as wide or narrower, are one wrapped blob at any width; other lines and characters end one', () => {
  const bytes = Buffer.concat([noise(100), Buffer.from(SECRET), noise(40)]);
  const wrapped = (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  // Padding ends a run; the decoder needs none.
  assert.deepEqual(base64Runs(`data: ${wrapped}\n\nnext`), [
    bytes.toString('base64').replace(/=+$/, ''),
  ]);
  assert.ok(
    decodedViews([{ text: wrapped, where: 'body' }]).some((view) => view.text.includes(SECRET)),
  );
  // `base64 -w N` wraps at any width: narrow lines of one width are one blob.
  for (const width of [4, 8, 20, 56]) {
    const narrow = (bytes.toString('base64').match(new RegExp(`.{1,${width}}`, 'g')) ?? []).join(
      '\n',
    );
    assert.ok(
      decodedViews([{ text: narrow, where: 'body' }]).some((view) => view.text.includes(SECRET)),
      `wrapped at ${width}`,
    );
  }
  // A line of another width before a blob (a key, an armour word) is not part of it; a wider
  // one is read joined to the narrower line after it, and the blob from that line on too.
  const k16 = 'k'.repeat(16);
  const a20 = 'a'.repeat(20);
  const b20 = 'b'.repeat(20);
  const c8 = 'c'.repeat(8);
  const w24 = 'w'.repeat(24);
  assert.deepEqual(base64Runs(`${k16}\n${a20}\n${b20}\n${c8}`), [k16, `${a20}${b20}${c8}`]);
  assert.deepEqual(base64Runs(`${w24}\n${a20}\n${b20}`), [`${w24}${a20}`, `${a20}${b20}`]);
  // Indentation the lines share, CRLF or CR: one blob. A blank line ends one.
  assert.deepEqual(base64Runs(`  ${a20}\r\n  ${b20}\r\t${c8}`), [`${a20}${b20}${c8}`]);
  assert.deepEqual(base64Runs(`${k16}\n\n${a20}\n \n${b20}`), [k16, a20, b20]);
  // Lines of text are no blob: a word list stays words, a short line starts none.
  assert.deepEqual(base64Runs('apple\nbanana\nkiwi\nplum\nfig'), []);
  assert.deepEqual(base64Runs('abc\ndefghijklmnopqrstuvw'), ['defghijklmnopqrstuvw']);
  assert.deepEqual(base64Runs('short words only, and one_longer-identifier.'), [
    'one_longer-identifier',
  ]);
  assert.deepEqual(base64Runs(''), []);
});

test('text without encoded runs has nothing decoded', () => {
  assert.deepEqual(decodedViews([{ text: 'GET /v1/items?page=2&sort=created', where: 'URL' }]), []);
});

test('base32 runs are of one case (digits go with either), hex runs of either; megabytes decode within a budget', () => {
  // A 6 MiB upload in base64 decodes four ways within the budget; 8 MiB of one letter, which
  // base64 and base32 both decode many times over, does not.
  const upload = noise(6 * 1024 * 1024).toString('base64');
  assert.ok(
    decodedViews([{ text: upload, where: 'body' }]).some(
      (view) => view.where === 'body (base64-decoded)',
    ),
  );
  assert.throws(
    () =>
      decodedViews([
        { text: 'short', where: 'header X-A' },
        { text: 'Q'.repeat(8 * 1024 * 1024), where: 'header X-B' },
      ]),
    (error) =>
      error instanceof DecodingBudgetExceeded &&
      error.where === 'header X-B' &&
      /more encoded text than can be decoded for scanning/.test(error.message),
  );
  assert.deepEqual(singleCaseRuns('ABCDEFGHIJKLMNOP234abcdefghijklmnop', BASE32_CLASSES), [
    'ABCDEFGHIJKLMNOP234',
    '234abcdefghijklmnop',
  ]);
  // Hex decoders take mixed case: so do its runs.
  assert.deepEqual(singleCaseRuns('0123456789abcdef0123ABCDEF0123456789', HEX_CLASSES), [
    '0123456789abcdef0123ABCDEF0123456789',
  ]);
  const mixedCase = [...Buffer.from(SECRET).toString('hex')]
    .map((char, i) => (i % 3 === 0 ? char.toUpperCase() : char))
    .join('');
  assert.ok(
    decodedViews([{ text: `x=${mixedCase}`, where: 'body' }]).some((view) =>
      view.text.includes(SECRET),
    ),
  );
  // 0, 1, 8 and 9 are not base32; a run shorter than 16 is none.
  assert.deepEqual(singleCaseRuns('ABCDEFGH1JKLMNOPQRST', BASE32_CLASSES), []);
  assert.deepEqual(singleCaseRuns('abcdefABCDEF', HEX_CLASSES), []);
  assert.deepEqual(singleCaseRuns('0123456789abcdef!0123456789ABCDEF', HEX_CLASSES), [
    '0123456789abcdef',
    '0123456789ABCDEF',
  ]);
});

test('a wrapped blob is decoded whole whatever comes before its first line: a key, an armour line, an indented YAML block', () => {
  // The secret straddles a line break of the blob for some lengths of the line before it.
  for (let before = 0; before < 80; before++) {
    const bytes = Buffer.from(`${'#'.repeat(before)}\nexport AGENT_SECRET=${SECRET}\n`);
    const lines = bytes.toString('base64').match(/.{1,76}/g) ?? [];
    const shapes = {
      'JSON string': `data\n\n${lines.join('\n')}`,
      armour: `-----BEGIN ENV FILE-----\n${lines.join('\n')}\n-----END ENV FILE-----\n`,
      'YAML block': `env_file: |\n  ${lines.join('\n  ')}\nnext: 1\n`,
      'a longer line first': `${'k'.repeat(90)}\r\n${lines.join('\r\n')}`,
    };
    for (const [shape, text] of Object.entries(shapes)) {
      assert.ok(
        decodedViews([{ text, where: 'body' }]).some((view) => view.text.includes(SECRET)),
        `${shape}, ${before} bytes before the secret's line`,
      );
    }
  }
});

test('decodings read as text as each one alone would: an invalid sequence at its end is U+FFFD', () => {
  // Each decoding ends inside a multi-byte sequence (0xE2 0x82 of a three-byte one): read
  // together with the next line, the newline must not be taken into it.
  const pieces = [0, 1, 2].map((n) => Buffer.from([0x61 + n, 0x62, 0x63, 0xe2, 0x82]));
  const text = pieces.map((piece) => piece.toString('hex').repeat(4)).join(' ');
  const hex = decodedViews([{ text, where: 'body' }]).find((view) => view.where.includes('hex'));
  const alone = pieces.flatMap((piece) => {
    const run = piece.toString('hex').repeat(4);
    return [0, 1].map((start) => Buffer.from(run.slice(start), 'hex').toString('utf8'));
  });
  assert.equal(hex?.text, alone.join('\n'));
  assert.ok(hex.text.includes('\uFFFD\n'));
});
