import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultBackend, TaskResult } from '../results.js';
import type { BrokerFactory, BrokerFixture } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';

/** Result-store rules 5 and 6 (see `ResultBackend` in results.ts): task claims, fenced stores, key reservations. */
export function describeStoreRules(name: string, factory: BrokerFactory): void {
  describe(`${name}: result store claims and reservations`, () => {
    let fx: BrokerFixture;
    let results: ResultBackend;
    beforeAll(async () => {
      fx = await factory();
      results = fx.results ?? fx.broker.results!;
    });
    afterAll(async () => fx?.close());

    const settlement = (ref: { id: string; queue: string }, value: unknown) => ({ record: record(ref, value), ttlMs: 60_000, keyTtlMs: 60_000 });

    it('claims a task id as a lease: acquired, again for its owner, busy for others, done once stored', async () => {
      const ref = { id: `t-${uniqueQueue()}`, queue: uniqueQueue() };
      expect(await results.claimTask(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimTask(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toEqual({ status: 'busy' });
      expect(await results.store(settlement(ref, 'a'), { owner: 'owner-a' })).toBe(true);
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toMatchObject({ status: 'done', record: { id: ref.id, value: 'a' } });
      // Any final record makes the id done, a failure included.
      const failed = { id: `t-${uniqueQueue()}`, queue: ref.queue };
      await results.store({ ...settlement(failed, null), record: { ...record(failed, null), state: 'failed', error: { name: 'Error', message: 'no' } } });
      expect(await results.claimTask(failed, 'owner-a', 5_000)).toMatchObject({ status: 'done', record: { state: 'failed' } });
    });

    it('a fenced store refuses a non-owner and writes nothing; the claim passes on when its lease ends', async () => {
      const ref = { id: `t-${uniqueQueue()}`, queue: uniqueQueue() };
      expect(await results.store(settlement(ref, 'nobody'), { owner: 'owner-a' })).toBe(false);
      expect(await results.get(ref)).toBeNull();
      expect(await results.claimTask(ref, 'owner-a', 300)).toEqual({ status: 'acquired' });
      expect(await results.store(settlement(ref, 'stale'), { owner: 'owner-b' })).toBe(false);
      expect(await results.get(ref)).toBeNull();
      await sleep(600);
      // owner-a's lease ran out (it hung or died): owner-b takes over, and owner-a's late store is refused.
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.store(settlement(ref, 'late'), { owner: 'owner-a' })).toBe(false);
      expect(await results.get(ref)).toBeNull();
      expect(await results.store(settlement(ref, 'b'), { owner: 'owner-b' })).toBe(true);
      expect(await results.get(ref)).toMatchObject({ value: 'b' });
      // The store released the claim: the same owner cannot write a second outcome over it.
      expect(await results.store(settlement(ref, 'again'), { owner: 'owner-b' })).toBe(false);
      expect(await results.get(ref)).toMatchObject({ value: 'b' });
    });

    it('reserves an idempotency key for its first task id, per queue, until the reservation ends', async () => {
      const [q, other] = [uniqueQueue(), uniqueQueue()];
      const key = { queue: q, key: 'order-42' };
      expect(await results.reserveKey(key, 'task-1', 400)).toBe('task-1');
      expect(await results.reserveKey(key, 'task-2', 400)).toBe('task-1');
      expect(await results.reserveKey({ queue: other, key: 'order-42' }, 'task-3', 400)).toBe('task-3');
      const raced = await Promise.all(['r-1', 'r-2', 'r-3', 'r-4'].map((id) => results.reserveKey({ queue: q, key: 'raced' }, id, 60_000)));
      expect(new Set(raced).size).toBe(1);
      await sleep(800);
      expect(await results.reserveKey(key, 'task-4', 60_000)).toBe('task-4');
    });
  });
}

function record(ref: { id: string; queue: string }, value: unknown): TaskResult {
  const m = makeMessage(ref.queue, { id: ref.id });
  return { id: m.id, queue: m.queue, task: m.task, state: 'succeeded', value, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
}
