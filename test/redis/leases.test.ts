import { createApp, LeaseLostError, type TaskResult } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LEASE = 200;

function record(m: { id: string; queue: string; task: string }, value: string): TaskResult {
  return { id: m.id, queue: m.queue, task: m.task, state: 'succeeded', value, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
}

describe('redis: leases and fencing', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('lease');
  });
  afterAll(() => fx?.close());

  it("rejects a stale owner's ack with a result, and never overwrites the new attempt's outcome", async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    const [stale] = await broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 1_000 });
    await sleep(LEASE + 50);
    const [fresh] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    expect(fresh!.message.id).toBe(msg.id);

    // The stale owner finishes first: refused, and nothing is written.
    await expect(stale!.ack({ record: record(msg, 'stale'), ttlMs: 60_000, keyTtlMs: 60_000 })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(stale!.deadLetter('late failure', { record: { ...record(msg, 'x'), state: 'failed' }, ttlMs: 60_000, keyTtlMs: 60_000 })).rejects.toBeInstanceOf(LeaseLostError);
    await expect(stale!.release()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await broker.results.get(msg)).toBeNull();
    expect(await broker.state(msg)).toBe('active');

    await fresh!.ack({ record: record(msg, 'fresh'), ttlMs: 60_000, keyTtlMs: 60_000 });
    // …and once the new owner has finished, a late ack still changes nothing.
    await expect(stale!.ack({ record: record(msg, 'stale'), ttlMs: 60_000, keyTtlMs: 60_000 })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await broker.results.get(msg)).toMatchObject({ state: 'succeeded', value: 'fresh' });
    expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0, dead: 0, completed: 1, failed: 0 });
  });

  it('settles a batch where some leases were lost: the others take effect, the lost ones reject', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const msgs = Array.from({ length: 6 }, () => makeMessage(q));
    await broker.publish(msgs, KEY_TTL);
    const short = await broker.fetch({ queues: [q], max: 3, leaseMs: LEASE, waitMs: 1_000 });
    const long = await broker.fetch({ queues: [q], max: 3, leaseMs: 30_000, waitMs: 1_000 });
    await sleep(LEASE + 50);
    await broker.stats(q); // promotes the lapsed leases back to ready
    const outcomes = await Promise.allSettled([...short, ...long].map((d) => d.ack()));
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(await broker.stats(q)).toMatchObject({ ready: 3, inFlight: 0, completed: 3 });
    const again = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 1_000 });
    expect(again.map((d) => d.message.id).sort()).toEqual(short.map((d) => d.message.id).sort());
    await Promise.all(again.map((d) => d.ack()));
  });

  it('never redelivers a long task while its worker renews the lease (no visibility-timeout duplicates)', async () => {
    const queue = uniqueQueue('long');
    const app = createApp({ broker: fx.broker, defaultQueue: queue });
    let starts = 0;
    const slow = app.task('slow.task', { input: z.object({}) }, async () => {
      starts++;
      await sleep(2_000); // over 3× the lease
      return 'done';
    });
    const worker = new Worker(app, { queues: [queue], concurrency: 2, leaseMs: 600, blockMs: 200 });
    const watcher = new Worker(app, { queues: [queue], concurrency: 2, leaseMs: 600, blockMs: 200 });
    await worker.start();
    const handle = await slow.enqueue({});
    await sleep(200);
    await watcher.start(); // a second worker, idle and ready to take anything whose lease lapses
    expect(await handle.result({ timeoutMs: 10_000 })).toBe('done');
    await Promise.all([worker.stop(), watcher.stop()]);
    expect(starts).toBe(1);
  });

  it('does not redeliver a delayed task early, however long it waits', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const msg = makeMessage(q, { eta: Date.now() + 600 });
    await broker.publish([msg], KEY_TTL);
    expect(await broker.fetch({ queues: [q], max: 1, leaseMs: 100, waitMs: 300 })).toEqual([]);
    expect(await broker.state(msg)).toBe('scheduled');
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 2_000 });
    expect(d?.message.id).toBe(msg.id);
    expect(Date.now()).toBeGreaterThanOrEqual(msg.eta!);
    await d!.ack();
  });
});
