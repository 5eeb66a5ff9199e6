import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadQueue, H } from './names.js';
import { amqpFixture } from './testing.js';

// Redrive on RabbitMQ acks a dead letter only once its republish is confirmed: a republish that
// fails leaves the letter where it was, refused with why (never lost).
describe('amqp: a redrive whose republish fails', () => {
  let fx: Awaited<ReturnType<typeof amqpFixture>>;
  beforeAll(async () => {
    fx = await amqpFixture();
  });
  afterAll(async () => fx?.close());

  it('keeps the letter and says why', async () => {
    const q = fx.track(uniqueQueue('rd'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], { keyTtlMs: 60_000 });
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 5_000 });
    await d!.deadLetter('boom');
    // The work queue comes back with other arguments: a fresh broker cannot declare it, so its
    // republish fails (PRECONDITION_FAILED) before anything is sent.
    await fx.channel(async (ch) => {
      await ch.deleteQueue(q);
      await ch.assertQueue(q, { durable: true, arguments: { 'x-max-priority': 3 } });
    });
    const other = await amqpFixture();
    try {
      const out = await other.broker.redrive(q, { ids: [msg.id] });
      expect(out.redriven).toEqual([]);
      expect(out.refused).toEqual([{ id: msg.id, reason: expect.stringMatching(/could not confirm the republish \(it may or may not be queued; check the queue before redriving it again\): .*PRECONDITION_FAILED/) }]);
      expect((await other.broker.deadLetters(q)).map((x) => [x.id, x.reason])).toEqual([[msg.id, 'boom']]);
    } finally {
      await other.close();
    }
  });
});

describe('amqp: a dead letter with a garbled error header', () => {
  let fx: Awaited<ReturnType<typeof amqpFixture>>;
  beforeAll(async () => {
    fx = await amqpFixture();
  });
  afterAll(async () => fx?.close());

  it('is listed (its header kept as text) and does not stop the others from being redriven', async () => {
    const q = fx.track(uniqueQueue('rg'));
    const good = makeMessage(q);
    await fx.broker.publish([good], { keyTtlMs: 60_000 });
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 5_000 });
    await d!.deadLetter('boom'); // declares the dead queue
    const garbled = makeMessage(q);
    await fx.channel(async (ch) => {
      ch.sendToQueue(deadQueue(q), Buffer.from(JSON.stringify(garbled)), { headers: { [H.error]: 'not json {', [H.reason]: 'by hand', [H.deadAt]: Date.now() } });
    });
    await expect.poll(async () => (await fx.broker.deadLetters(q)).length, { timeout: 5_000 }).toBe(2);
    const listed = await fx.broker.deadLetters(q);
    expect(listed.find((l) => l.id === garbled.id)).toMatchObject({ reason: 'by hand', error: { name: 'Error', message: 'not json {' } });
    expect(await fx.broker.redrive(q)).toEqual({ redriven: [good.id, garbled.id], refused: [] });
  });
});
