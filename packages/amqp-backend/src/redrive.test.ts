import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
