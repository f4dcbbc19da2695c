import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  forwarder,
  MESSAGE_OVERHEAD_BYTES,
  MessageBudget,
  QUEUED_BYTES_HIGH,
  type MessageDestination,
  type MessageSource,
} from '../../src/engine/message-relay.js';

/** A side whose pauses are seen, and a reader whose writes finish when the test says. */
function side(): MessageSource & { isPaused: boolean } {
  const source = {
    isPaused: false,
    pause: () => void (source.isPaused = true),
    resume: () => void (source.isPaused = false),
  };
  return source;
}

function reader(): MessageDestination & { written: Buffer[]; finish: () => void } {
  const pending: (() => void)[] = [];
  const destination = {
    written: [] as Buffer[],
    send: ((data: Buffer, _options: unknown, done?: () => void) => {
      destination.written.push(data);
      if (done) pending.push(done);
    }) as MessageDestination['send'],
    finish: () => {
      for (const done of pending.splice(0)) done();
    },
  };
  return destination;
}

const pass = () => Promise.resolve(true);
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('messages go on in order, each once judged; one refused is not sent', async () => {
  const from = side();
  const to = reader();
  const verdicts = [true, false, true];
  const relay = forwarder(from, to, new MessageBudget(1 << 30), async (data) => {
    const length = (data as Buffer).length;
    // Judged one after another, however long each takes.
    await new Promise((resolve) => setTimeout(resolve, 30 - length * 10));
    return verdicts[length - 1] ?? false;
  });
  for (const text of ['a', 'bb', 'ccc']) relay.send(Buffer.from(text), false);
  await relay.settled();
  assert.deepEqual(
    to.written.map((b) => b.toString()),
    ['a', 'ccc'],
  );
});

test('empty messages to a reader that does not read pause their sender too: each costs what it takes to hold', async () => {
  const from = side();
  const to = reader();
  const relay = forwarder(from, to, new MessageBudget(1 << 30), pass);
  const fit = Math.floor(QUEUED_BYTES_HIGH / MESSAGE_OVERHEAD_BYTES);
  for (let i = 0; i < fit; i++) relay.send(Buffer.alloc(0), false);
  await relay.settled();
  assert.equal(from.isPaused, false, `${fit} of them: it goes on`);
  relay.send(Buffer.alloc(0), false);
  await relay.settled();
  assert.equal(from.isPaused, true, 'one more: paused');
  to.finish();
  await settle();
  assert.equal(from.isPaused, false, 'taken by the reader: it goes on');
});

test('a sender is paused past its own queue, and past the budget all relays share', async () => {
  const chunk = Buffer.alloc(QUEUED_BYTES_HIGH / 2 - MESSAGE_OVERHEAD_BYTES + 1);
  const budget = new MessageBudget(QUEUED_BYTES_HIGH * 1.5);
  const [first, second] = [side(), side()];
  const [toFirst, toSecond] = [reader(), reader()];
  const one = forwarder(first, toFirst, budget, pass);
  const two = forwarder(second, toSecond, budget, pass);
  one.send(chunk, true);
  await one.settled();
  assert.equal(first.isPaused, false, 'half its queue: it goes on');
  one.send(chunk, true);
  await one.settled();
  assert.equal(first.isPaused, true, 'past its queue: paused');
  two.send(chunk, true);
  await two.settled();
  assert.equal(second.isPaused, true, 'its own queue half full, the budget spent: paused');
  // The other relay's reader takes its messages: the budget has room, both go on.
  toFirst.finish();
  await settle();
  assert.deepEqual([first.isPaused, second.isPaused], [false, false]);
});

test('messages waiting behind a slow judgement are judged one per event-loop turn, not in one burst', async () => {
  let finishSlowScan = () => {};
  const slowScan = new Promise<void>((resolve) => (finishSlowScan = resolve));
  let judged = 0;
  const relay = forwarder(side(), reader(), new MessageBudget(1 << 30), async (data) => {
    // The first one is slow (a scan on a thread); those queued behind it are quick.
    if ((data as Buffer).length === 0) await slowScan;
    judged++;
    return true;
  });
  relay.send(Buffer.alloc(0), false);
  for (let i = 0; i < 100; i++) relay.send(Buffer.from('x'), false);
  await settle();
  finishSlowScan();
  await settle();
  assert.ok(judged <= 3, `${judged} of 101 judged in the turn the slow one ended`);
  await relay.settled();
  assert.equal(judged, 101);
});
