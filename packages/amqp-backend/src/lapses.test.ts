import { LeaseLostError, nextAttempt, type TaskResult } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { AMQP_URL, amqpFixture } from './testing.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LEASE = 30_000;
type Fixture = Awaited<ReturnType<typeof amqpFixture>>;

// Issue 8, defect 1: a handler that kills its worker ran forever (137 times on RabbitMQ), because
// a delivery that died unsettled counted nothing. `Delivery.lapses` counts those deaths (core
// turns them into spent attempts); release() and our own give-backs must not count.
describe('amqp: Delivery.lapses', () => {
  let a: Fixture;
  let b: Fixture;
  beforeAll(async () => {
    a = await amqpFixture();
    b = await amqpFixture();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  const one = async (fx: Fixture, q: string, leaseMs = LEASE) => {
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs, waitMs: 5_000 });
    expect(d).toBeDefined();
    return d!;
  };

  for (const kind of ['classic', 'quorum'] as const) {
    it(`counts deliveries that died unsettled on a ${kind} queue; release keeps the count, retry resets it`, async () => {
      const q = uniqueQueue('al');
      const quorum = kind === 'quorum' ? await new AmqpBroker(`${AMQP_URL}?quorum=${q}`, { reconnectMinMs: 20 }).connect() : null;
      const [x, y] = quorum ? [{ broker: quorum }, { broker: quorum }] : [a, b];
      try {
        const msg = makeMessage(q);
        await x.broker.publish([msg], KEY_TTL);
        const first = await one(x as Fixture, q);
        expect(first.lapses).toBe(0);
        x.broker.link.drop(new Error('test: the consumer died'));
        const second = await one(y as Fixture, q);
        expect(second.message.id).toBe(msg.id);
        expect(second.lapses).toBe(1);
        // Its handler kills the process at once: what it leaves behind is one message, counted.
        y.broker.link.drop(new Error('test: the consumer died again'));
        const third = await one(x as Fixture, q);
        expect(third.lapses).toBe(2);
        await third.release(); // graceful stop (or key busy): not a death
        // A lease that lapses in the client (a hung handler) is a death too.
        const fourth = await one(y as Fixture, q, 200);
        expect(fourth.lapses).toBe(2);
        await sleep(400); // its lease lapses: given back by the client
        await expect(fourth.ack()).rejects.toBeInstanceOf(LeaseLostError);
        const fifth = await one(x as Fixture, q);
        expect(fifth.lapses).toBe(3);
        const at = Date.now();
        await fifth.retry(nextAttempt(fifth.message, 2, { name: 'Error', message: 'boom' }, at), at);
        const sixth = await one(y as Fixture, q);
        expect([sixth.message.attempt, sixth.lapses]).toEqual([3, 0]);
        await sixth.ack();
        expect(await x.broker.fetch({ queues: [q], max: 5, leaseMs: LEASE, waitMs: 1_000 })).toEqual([]);
      } finally {
        if (quorum) {
          await quorum.link.withChannel(async (ch) => {
            for (const n of quorum.declaredQueues) await ch.deleteQueue(n).catch(() => {});
          });
          await quorum.close();
        }
      }
    }, 30_000);
  }

  it('does not count a prefetched message an idle consumer gives back, nor one given back on close', async () => {
    const q = a.track(uniqueQueue('al'));
    await a.broker.publish([makeMessage(q)], KEY_TTL);
    await (await one(a, q)).ack();
    // Still subscribed with prefetch 5: these land in a's buffer, unstarted.
    await a.broker.fetch({ queues: [q], max: 5, leaseMs: LEASE, waitMs: 0 });
    await a.broker.publish([1, 2, 3].map((i) => makeMessage(q, { payload: { i } })), KEY_TTL);
    await sleep(2_500); // nobody fetches: the idle consumer is cancelled and its buffer given back
    const got = await b.broker.fetch({ queues: [q], max: 3, leaseMs: LEASE, waitMs: 5_000 });
    expect(got.map((d) => d.lapses)).toEqual([0, 0, 0]);
    await Promise.all(got.map((d) => d.ack()));
  }, 20_000);
});

// Issue 8, defects 3 and 4: an owner whose event loop was blocked past its lease still published
// its result (the lease timer had not fired), and a result in flight when its session died was
// sent again on the next session, after the task had been redelivered.
describe('amqp: a stale owner’s result is never published', () => {
  let producer: Fixture;
  let owner: Fixture;
  beforeAll(async () => {
    producer = await amqpFixture();
    owner = await amqpFixture();
  });
  afterAll(async () => {
    await producer?.close();
    await owner?.close();
  });

  const result = (id: string, q: string, value: unknown): TaskResult => ({ id, queue: q, task: 'conformance.echo', state: 'succeeded', value, attempts: 1, finishedAt: Date.now(), idempotencyKey: null });

  it('refuses to settle once the lease deadline passed while the event loop was blocked', async () => {
    const q = producer.track(uniqueQueue('as'));
    const msg = makeMessage(q);
    await producer.broker.publish([msg], KEY_TTL);
    const [d] = await owner.broker.fetch({ queues: [q], max: 1, leaseMs: 300, waitMs: 5_000 });
    const until = Date.now() + 600;
    while (Date.now() < until); // the handler blocks the event loop past its lease
    expect(await owner.broker.renew([d!], 300)).toEqual([false]);
    await expect(d!.ack({ record: result(msg.id, q, 'stale'), ttlMs: 60_000, keyTtlMs: 60_000 })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await producer.broker.results.wait(msg, { timeoutMs: 1_000 })).toBeNull();
    const [again] = await producer.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(again?.message.id).toBe(msg.id);
    expect(again!.lapses).toBe(1);
    await again!.ack();
  });

  it('does not send a result again on a new session when the one it was published on died', async () => {
    const q = producer.track(uniqueQueue('as'));
    const msg = makeMessage(q);
    await producer.broker.publish([msg], KEY_TTL);
    const [d] = await owner.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    // The socket is cut with the result still in its write buffer (a partition, a crash).
    const stream = (owner.broker.link.current!.model as unknown as { connection: { stream: { cork(): void; destroy(err?: Error): void } } }).connection.stream;
    stream.cork();
    const acking = d!.ack({ record: result(msg.id, q, 'stale'), ttlMs: 60_000, keyTtlMs: 60_000 });
    stream.destroy(new Error('test: connection cut'));
    await expect(acking).rejects.toBeInstanceOf(LeaseLostError);
    expect(await producer.broker.results.wait(msg, { timeoutMs: 1_500 })).toBeNull();
    const [again] = await producer.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(again?.message.id).toBe(msg.id);
    await again!.ack();
  });
});
