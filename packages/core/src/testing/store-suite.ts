import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../broker.js';
import type { ResultBackend, TaskRef, TaskResult } from '../results.js';
import { collect } from './broker-suite.js';
import type { BrokerFactory, BrokerFixture } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';

/**
 * Result-store rules 5 to 7 (see `ResultBackend` in results.ts): task claims, fenced stores, key
 * reservations. Claims are taken on tasks published and fetched through the fixture's broker, as
 * a worker takes them (a store may route a record by the task's publisher, as AMQP's does).
 */
export function describeStoreRules(name: string, factory: BrokerFactory): void {
  describe(`${name}: result store claims and reservations`, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    let results: ResultBackend;
    beforeAll(async () => {
      fx = await factory();
      broker = fx.broker;
      results = fx.results ?? broker.results!;
    });
    afterAll(async () => fx?.close());

    /** A task in flight: published, then fetched and held (its delivery is acked by the test). */
    async function held(queue = uniqueQueue()): Promise<{ ref: TaskRef; delivery: Delivery }> {
      const msg = makeMessage(queue);
      await broker.publish([msg], { keyTtlMs: 60_000 });
      const [delivery] = await collect(broker, queue, 1);
      expect(delivery?.message.id).toBe(msg.id);
      return { ref: { id: msg.id, queue }, delivery: delivery! };
    }

    const settlement = (ref: TaskRef, value: unknown, state: TaskResult['state'] = 'succeeded') => ({ record: record(ref, value, state), ttlMs: 60_000, keyTtlMs: 60_000 });

    it('claims a task id as a lease: acquired, again for its owner, busy for others, done once stored', async () => {
      const { ref, delivery } = await held();
      expect(await results.claimTask(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimTask(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toEqual({ status: 'busy' });
      expect(await results.store(settlement(ref, 'a'), { owner: 'owner-a' })).toBe(true);
      expect(await results.wait(ref, { timeoutMs: 5_000 })).toMatchObject({ value: 'a' });
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toMatchObject({ status: 'done', record: { id: ref.id, value: 'a' } });
      await delivery.ack();
      // Any final record makes the id done, a failure included.
      const failed = await held(ref.queue);
      expect(await results.store(settlement(failed.ref, null, 'failed'))).toBe(true);
      expect(await results.wait(failed.ref, { timeoutMs: 5_000 })).toMatchObject({ state: 'failed' });
      expect(await results.claimTask(failed.ref, 'owner-a', 5_000)).toMatchObject({ status: 'done', record: { state: 'failed' } });
      await failed.delivery.ack();
    });

    it('a fenced store refuses a non-owner and writes nothing; the claim passes on when its lease ends', async () => {
      const { ref, delivery } = await held();
      expect(await results.store(settlement(ref, 'unclaimed'), { owner: 'owner-a' })).toBe(false);
      expect(await results.claimTask(ref, 'owner-a', 300)).toEqual({ status: 'acquired' });
      expect(await results.store(settlement(ref, 'not-the-owner'), { owner: 'owner-b' })).toBe(false);
      expect(await results.get(ref)).toBeNull();
      await sleep(600);
      // owner-a's lease ran out (it hung or died): owner-b takes over, and owner-a's late store is refused.
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.store(settlement(ref, 'stale'), { owner: 'owner-a' })).toBe(false);
      expect(await results.get(ref)).toBeNull();
      expect(await results.store(settlement(ref, 'b'), { owner: 'owner-b' })).toBe(true);
      // A refused write that had landed would show here: a stored success is never replaced (rule 2).
      expect(await results.wait(ref, { timeoutMs: 5_000 })).toMatchObject({ value: 'b' });
      // The store released the claim: its owner cannot write a second outcome under it.
      expect(await results.store(settlement(ref, 'again', 'failed'), { owner: 'owner-b' })).toBe(false);
      expect(await results.get(ref)).toMatchObject({ state: 'succeeded', value: 'b' });
      await delivery.ack();
    });

    it('forgets a final record, so a redriven task can claim and run again (rule 8)', async () => {
      const { ref, delivery } = await held();
      expect(await results.store(settlement(ref, 'first try', 'failed'))).toBe(true);
      expect(await results.claimTask(ref, 'owner-a', 5_000)).toMatchObject({ status: 'done' });
      await results.forget([ref, { id: 'never-stored', queue: ref.queue }]);
      expect(await results.get(ref)).toBeNull();
      expect(await results.claimTask(ref, 'owner-b', 5_000)).toEqual({ status: 'acquired' });
      await delivery.ack(); // (a redriven task storing its new outcome: test/control.test.ts, on every broker)
    });

    it('reserves an idempotency key for its first task id, per queue, until the reservation ends', async () => {
      const [q, other] = [uniqueQueue(), uniqueQueue()];
      const key = { queue: q, key: 'order-42' };
      // Long enough that the second call comes inside it even after a stalled round trip on a loaded machine.
      const reservationMs = 1_000;
      expect(await results.reserveKey(key, 'task-1', reservationMs)).toBe('task-1');
      expect(await results.reserveKey(key, 'task-2', reservationMs)).toBe('task-1');
      expect(await results.reserveKey({ queue: other, key: 'order-42' }, 'task-3', reservationMs)).toBe('task-3');
      const raced = await Promise.all(['r-1', 'r-2', 'r-3', 'r-4'].map((id) => results.reserveKey({ queue: q, key: 'raced' }, id, 60_000)));
      expect(new Set(raced).size).toBe(1);
      await sleep(reservationMs * 2);
      expect(await results.reserveKey(key, 'task-4', 60_000)).toBe('task-4');
    });

    it('gives back a reservation only for its own task id and while no outcome is stored (rule 7)', async () => {
      const q = uniqueQueue();
      const key = { queue: q, key: 'order-7' };
      expect(await results.reserveKey(key, 'task-1', 60_000)).toBe('task-1');
      await results.unreserveKey(key, 'task-2'); // not the owner: nothing changes
      expect(await results.reserveKey(key, 'task-2', 60_000)).toBe('task-1');
      await results.unreserveKey(key, 'task-1');
      expect(await results.reserveKey(key, 'task-3', 60_000)).toBe('task-3');
      // A claim on the key outlives the reservation it shares the record with.
      expect(await results.claimKey(key, 'delivery-a', 60_000)).toEqual({ status: 'acquired' });
      await results.unreserveKey(key, 'task-3');
      expect(await results.claimKey(key, 'delivery-b', 60_000)).toEqual({ status: 'busy' });
      expect(await results.reserveKey(key, 'task-4', 60_000)).toBe('task-4');
      // Once an outcome is stored under the key, the key is the task's for good.
      const { ref, delivery } = await held(q);
      expect(await results.reserveKey({ queue: q, key: 'order-8' }, ref.id, 60_000)).toBe(ref.id);
      expect(await results.store({ ...settlement(ref, 'paid'), record: { ...record(ref, 'paid', 'succeeded'), idempotencyKey: 'order-8' } })).toBe(true);
      await results.unreserveKey({ queue: q, key: 'order-8' }, ref.id);
      expect(await results.reserveKey({ queue: q, key: 'order-8' }, 'task-5', 60_000)).toBe(ref.id);
      await delivery.ack();
    });
  });
}

function record(ref: TaskRef, value: unknown, state: TaskResult['state']): TaskResult {
  const m = makeMessage(ref.queue, { id: ref.id });
  const outcome = state === 'succeeded' ? { value } : { error: { name: 'Error', message: String(value) } };
  return { id: m.id, queue: m.queue, task: m.task, state, attempts: 1, finishedAt: Date.now(), idempotencyKey: null, ...outcome };
}
