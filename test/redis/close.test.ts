import { BackendError } from '@celeriac/core';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker } from '@celeriac/redis-backend';
import { afterEach, describe, expect, it } from 'vitest';
import { CLOSE_DRAIN_MS } from '../../packages/redis-backend/src/settler.js';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

const KEY_TTL = { keyTtlMs: 60_000 };

/** Resolves with `what` if `p` settles within `ms`, else with 'pending'. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]).finally(() => clearTimeout(timer));
};

// close() waited for every settle call in flight to answer; on a silent connection (a partition
// that resets nothing) none ever does, so close() — and app.close(), and `celeriac worker` on
// SIGTERM — hung for good.
describe('redis: closing the broker under a silent partition', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('ends within its bound, rejects the ack still in flight as unanswered, and loses nothing', async () => {
    const proxy = await new FaultProxy(REDIS_URL).start();
    const prefix = uniquePrefix('close');
    cleanup.push(() => removePrefix(prefix), () => proxy.close());
    const broker = await connectRedisBroker(urlWith(prefix, `redis://127.0.0.1:${proxy.port}`));
    cleanup.push(() => broker.close());
    const q = uniqueQueue('close');
    const [published] = await broker.publish([makeMessage(q)], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 1_000, waitMs: 1_000 });

    proxy.drop();
    const ack = d!.ack().then(
      () => 'acked',
      (err: unknown) => err,
    );
    const started = Date.now();
    expect(await within(broker.close(), CLOSE_DRAIN_MS + 5_000)).toBeUndefined();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(CLOSE_DRAIN_MS - 100); // it did wait for the answer
    const error = await within(ack, 1_000);
    expect(error).toBeInstanceOf(BackendError);
    expect(String((error as Error).message)).toMatch(/closed before Redis answered .* within \d+ ms/);

    // The ack never reached Redis: the lease lapses and the task comes back (one lapse), not lost.
    proxy.heal();
    const other = await connectRedisBroker(urlWith(prefix));
    cleanup.push(() => other.close());
    const [again] = await other.fetch({ queues: [q], max: 1, leaseMs: 5_000, waitMs: 5_000 });
    expect(again?.message.id).toBe(published!.id);
    expect(again?.lapses).toBe(1);
    await again!.ack();
  }, 30_000);
});
