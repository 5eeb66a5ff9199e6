import { nextAttempt } from '@celeriac/core';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delayLevel } from './names.js';
import { amqpFixture } from './testing.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LEASE = 30_000;
type Fixture = Awaited<ReturnType<typeof amqpFixture>>;

describe('amqp: delay ladder and dead letters', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await amqpFixture();
  });
  afterAll(async () => fx?.close());

  it('picks the largest power-of-two rung not past the due time', () => {
    expect(delayLevel(0)).toBe(-1);
    expect(delayLevel(1)).toBe(0);
    expect(delayLevel(1_000)).toBe(9); // 512 ms, then 256, 128, 64, 32, 8: popcount(1000) hops
    expect(delayLevel(3 * 86_400_000)).toBe(27);
    expect(delayLevel(365 * 86_400_000)).toBe(31); // capped; longer delays take several top hops
  });

  it('parks a long delay on a TTL rung with no consumer, counted as delayed', async () => {
    const q = fx.track(uniqueQueue('al'));
    const msg = makeMessage(q, { eta: Date.now() + 3 * 86_400_000 });
    await fx.broker.publish([msg], KEY_TTL);
    const rung = await fx.channel((ch) => ch.checkQueue(`${q}:delay:${2 ** 27}`));
    expect(rung).toMatchObject({ messageCount: 1, consumerCount: 0 });
    expect(await fx.broker.stats(q)).toMatchObject({ ready: 0, delayed: 1 });
    expect(await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 200 })).toEqual([]);
  });

  it('delivers a delayed message not before its eta, and not much after', async () => {
    const q = fx.track(uniqueQueue('al'));
    const eta = Date.now() + 1_300;
    await fx.broker.publish([makeMessage(q, { eta, priority: 6 })], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    const late = Date.now() - eta;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(500);
    expect(d!.message.priority).toBe(6);
    await d!.ack();
  });

  it('retries down the ladder with attempt + 1 and the last error, keeping the reply address', async () => {
    const q = fx.track(uniqueQueue('al'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    const at = Date.now() + 600;
    await d!.retry(nextAttempt(d!.message, 1, { name: 'Error', message: 'try later' }, at), at);
    expect((await fx.broker.stats(q)).delayed).toBe(1);
    const [again] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(Date.now()).toBeGreaterThanOrEqual(at);
    expect(again!.message).toMatchObject({ id: msg.id, attempt: 2, lastError: { message: 'try later' } });
    // The reply address survived the hops: the result still finds its way to the publisher.
    const waiting = fx.broker.results.wait(msg, { timeoutMs: 5_000 });
    await again!.ack({ record: { id: msg.id, queue: q, task: msg.task, state: 'succeeded', value: 'ok', attempts: 2, finishedAt: Date.now(), idempotencyKey: null }, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await waiting).toMatchObject({ value: 'ok' });
  });

  it('dead-letters to <queue>:dead with the reason and error in the headers, body unchanged', async () => {
    const q = fx.track(uniqueQueue('al'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    const error = { name: 'Error', message: 'card declined' };
    await d!.deadLetter('non-retryable error: card declined', {
      record: { id: msg.id, queue: q, task: msg.task, state: 'failed', error, attempts: 1, finishedAt: Date.now(), idempotencyKey: null },
      ttlMs: 60_000,
      keyTtlMs: 60_000,
    });
    const got = await fx.channel((ch) => ch.get(`${q}:dead`, { noAck: true }));
    expect(got).not.toBe(false);
    if (!got) return;
    expect(JSON.parse(got.content.toString())).toEqual(msg);
    expect(got.properties.deliveryMode).toBe(2);
    expect(got.properties.headers).toMatchObject({ 'x-celeriac-reason': 'non-retryable error: card declined', 'x-celeriac-error': JSON.stringify(error) });
  });

  it('dead-letters a message whose envelope names another queue, instead of running it', async () => {
    const q = fx.track(uniqueQueue('al'));
    await fx.injectRaw(q, JSON.stringify(makeMessage('elsewhere')));
    expect(await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 500 })).toEqual([]);
    const [dead] = await fx.broker.deadLetters(q);
    expect(dead?.reason).toMatch(/names queue "elsewhere"/);
  });
});
