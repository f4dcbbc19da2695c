import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRfc3339Nano, goTimestamp, parseGoTime, toUtc } from '../../src/receipts/go-time.js';

function reprint(raw: string): string {
  const parsed = parseGoTime(raw);
  assert.ok(parsed.ok, raw);
  return formatRfc3339Nano(parsed.time);
}

test('Go re-prints a time with its own offset, trailing fraction zeros trimmed', () => {
  assert.equal(reprint('2026-07-24T22:57:41.868192730Z'), '2026-07-24T22:57:41.86819273Z');
  assert.equal(reprint('2026-07-24T22:57:41.000Z'), '2026-07-24T22:57:41Z');
  assert.equal(reprint('2026-07-24T22:57:41+00:00'), '2026-07-24T22:57:41Z');
  assert.equal(reprint('2026-07-24T22:57:41.5+05:30'), '2026-07-24T22:57:41.5+05:30');
  assert.equal(reprint('2026-07-24T22:57:41.1234567899Z'), '2026-07-24T22:57:41.123456789Z');
});

test('conversion to UTC crosses days and years', () => {
  const parsed = parseGoTime('2026-12-31T22:00:00-04:00');
  assert.ok(parsed.ok);
  assert.equal(formatRfc3339Nano(toUtc(parsed.time)), '2027-01-01T02:00:00Z');
});

test('strings Go refuses are refused with Go-style messages', () => {
  const cases: Array<[string, RegExp]> = [
    ['2026-09-27T24:00:00Z', /hour out of range/],
    ['2026-02-29T00:00:00Z', /day out of range/],
    ['2026-09-27 18:36:18Z', /cannot parse " 18:36:18Z" as "T"/],
    ['2026-09-27T18:36:18', /cannot parse "" as "Z07:00"/],
    ['2026-09-27T18:36:18z', /cannot parse "z" as "Z07:00"/],
    ['2026-09-27T18:36:18Zjunk', /extra text/],
    ['2026-09-27T1:36:18Z', /cannot parse/],
  ];
  for (const [raw, message] of cases) {
    const parsed = parseGoTime(raw);
    assert.equal(parsed.ok, false, raw);
    assert.match(parsed.ok ? '' : parsed.error, message, raw);
  }
});

test('a JS Date prints as Go UTC RFC3339Nano', () => {
  assert.equal(goTimestamp(new Date('2026-11-26T22:00:00.120Z')), '2026-11-26T22:00:00.12Z');
  assert.equal(goTimestamp(new Date('2026-11-26T22:00:00.000Z')), '2026-11-26T22:00:00Z');
});

test('the strict reader checks every digit, separator and range', () => {
  const accepted: Array<[string, string]> = [
    ['2000-02-29T00:00:00Z', '2000-02-29T00:00:00Z'],
    ['0000-01-01T00:00:00-23:59', '0000-01-01T00:00:00-23:59'],
    ['9999-12-31T23:59:59.000000001+00:00', '9999-12-31T23:59:59.000000001Z'],
    ['2026-07-24T22:57:41.0100Z', '2026-07-24T22:57:41.01Z'],
  ];
  for (const [raw, printed] of accepted) assert.equal(reprint(raw), printed, raw);
  const refused = [
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-07-24T22:57:60Z',
    '2026-07-24T22:60:41Z',
    '2026-07-24T22:57:41.Z',
    '2026-07-24T22:57:41+24:00',
    '2026-07-24T22:57:41+05:60',
    '2026-07-24T22:57:41+05-30',
    '2026-07-24T22:57:41*05:30',
    '2026-07-24T22:57:4\u0663Z',
    '2026/07-24T22:57:41Z',
    '2026-07-24T22:57:41',
  ];
  for (const raw of refused) assert.equal(parseGoTime(raw).ok, false, raw);
});
