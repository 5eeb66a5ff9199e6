import { LeaseLostError, type TaskResult } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { Publisher, UnroutableError } from './publisher.js';
import { AMQP_URL, amqpFixture, canControlRabbit, killConnection } from './testing.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LEASE = 30_000;
type Fixture = Awaited<ReturnType<typeof amqpFixture>>;

async function collect(fx: Fixture, queue: string, n: number) {
  const out = [];
  while (out.length < n) {
    const ds = await fx.broker.fetch({ queues: [queue], max: n - out.length, leaseMs: LEASE, waitMs: 2_000 });
    if (ds.length === 0) break;
    out.push(...ds);
  }
  return out;
}

describe('amqp: connections, consumers and leases', () => {
  let fx: Fixture;
  let other: Fixture;
  beforeAll(async () => {
    fx = await amqpFixture();
    other = await amqpFixture();
  });
  afterAll(async () => {
    await fx?.close();
    await other?.close();
  });

  it.skipIf(!canControlRabbit)('redelivers to another consumer when the holder’s connection is killed, and fences the old token', async () => {
    const q = fx.track(uniqueQueue('am'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [held] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    expect(held?.message.id).toBe(msg.id);
    expect(await other.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 300 })).toEqual([]);

    // RabbitMQ drops the holder's connection, as it does when a process dies or a cable is cut.
    const gen = fx.broker.link.current!.gen;
    expect(await killConnection(fx.broker.link.name)).toBe(1);

    const [again] = await other.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(again?.message.id).toBe(msg.id);
    await expect(held!.ack()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await fx.broker.renew([held!], LEASE)).toEqual([false]);
    await again!.ack();

    // The killed side reconnects on its own (a new generation) and keeps working.
    const next = makeMessage(fx.track(uniqueQueue('am')));
    await fx.broker.publish([next], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [next.queue], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(fx.broker.link.current!.gen).toBeGreaterThan(gen);
    expect(d?.message.id).toBe(next.id);
    await d!.ack();
  });

  it('re-publishes unconfirmed messages after a reconnect: nothing published is lost', async () => {
    const q = fx.track(uniqueQueue('am'));
    const msgs = Array.from({ length: 300 }, (_, i) => makeMessage(q, { payload: { i } }));
    const publishing = fx.broker.publish(msgs, KEY_TTL);
    await sleep(1);
    fx.broker.link.drop(new Error('test: drop mid-publish'));
    await publishing;
    expect(fx.broker.unconfirmed).toBe(0);
    const seen = new Set<string>();
    const deadline = Date.now() + 10_000;
    while (seen.size < msgs.length && Date.now() < deadline) {
      const ds = await other.broker.fetch({ queues: [q], max: 100, leaseMs: LEASE, waitMs: 500 });
      for (const d of ds) seen.add(d.message.id);
      await Promise.all(ds.map((d) => d.ack()));
    }
    // Duplicates may appear (at-least-once); losses may not.
    expect(seen.size).toBe(msgs.length);
  });

  it('re-subscribes when RabbitMQ cancels the consumer (queue deleted under it)', async () => {
    const q = fx.track(uniqueQueue('am'));
    await fx.broker.publish([makeMessage(q)], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    await d!.ack();
    await fx.channel((ch) => ch.deleteQueue(q));
    await sleep(100);
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [again] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 5_000 });
    expect(again?.message.id).toBe(msg.id);
    await again!.ack();
  });

  it('publishes with mandatory: a message to a queue deleted behind the cache is re-routed, not dropped', async () => {
    const q = fx.track(uniqueQueue('am'));
    await fx.broker.publish([makeMessage(q)], KEY_TTL);
    await fx.channel((ch) => ch.deleteQueue(q));
    const msg = makeMessage(q);
    expect(await fx.broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: false }]);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    expect(d?.message.id).toBe(msg.id);
    await d!.ack();
  });

  it('rejects an unroutable mandatory publish instead of dropping it silently', async () => {
    const publisher = new Publisher(fx.broker.link);
    const body = Buffer.from('{}');
    await expect(publisher.publish({ queue: `nowhere-${uniqueQueue()}`, body, props: { persistent: true }, mandatory: true })).rejects.toBeInstanceOf(UnroutableError);
    // Replies are sent without mandatory: a client gone for good is not an error for the worker.
    await expect(publisher.publish({ queue: `nowhere-${uniqueQueue()}`, body, props: {}, mandatory: false })).resolves.toBeUndefined();
    expect(publisher.unconfirmed).toBe(0);
  });

  it('sends a result to the publishing process’s reply queue, across processes', async () => {
    const q = fx.track(uniqueQueue('am'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const waiting = fx.broker.results.wait(msg, { timeoutMs: 10_000 });
    const [d] = await other.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    const record: TaskResult = { id: msg.id, queue: q, task: msg.task, state: 'succeeded', value: { ok: 1 }, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await d!.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await waiting).toMatchObject({ id: msg.id, state: 'succeeded', value: { ok: 1 } });
    expect(await fx.broker.results.get(msg)).toMatchObject({ value: { ok: 1 } });
  });

  it('keeps results sent while the publisher was reconnecting (reply queue, not direct reply-to)', async () => {
    const q = fx.track(uniqueQueue('am'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [d] = await other.broker.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
    fx.broker.link.drop(new Error('test: publisher reconnecting'));
    const record: TaskResult = { id: msg.id, queue: q, task: msg.task, state: 'succeeded', value: 42, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await d!.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await fx.broker.results.wait(msg, { timeoutMs: 10_000 })).toMatchObject({ value: 42 });
  });

  it('honours priorities on classic queues and runs quorum queues (declared x-queue-type: quorum)', async () => {
    const q = uniqueQueue('amq');
    const qb = await new AmqpBroker(`${AMQP_URL}?quorum=${q}`).connect();
    try {
      await qb.publish([makeMessage(q, { priority: 9 })], KEY_TTL);
      const info = await fx.channel((ch) => ch.checkQueue(q));
      expect(info.messageCount).toBe(1);
      // Re-declaring it as classic is refused with a message that names the fix.
      await expect(fx.broker.publish([makeMessage(q)], KEY_TTL)).rejects.toThrow(/quorumQueues|other arguments/);
      const [d] = await qb.fetch({ queues: [q], max: 1, leaseMs: LEASE, waitMs: 2_000 });
      await d!.ack();
    } finally {
      await fx.channel((ch) => ch.deleteQueue(q));
      await qb.close();
    }
  });

  it('coalesced acks never cover a delivery still held: out-of-order acks, then a lost connection', async () => {
    const q = fx.track(uniqueQueue('am'));
    const msgs = [0, 1, 2, 3].map((i) => makeMessage(q, { payload: { i } }));
    await fx.broker.publish(msgs, KEY_TTL);
    const got = await collect(fx, q, 4);
    expect(got).toHaveLength(4);
    // Ack the later ones in the same tick, keep the oldest: a multiple-ack must stop below it.
    const [held, ...done] = got;
    await Promise.all(done.reverse().map((d) => d.ack()));
    await sleep(100);
    fx.broker.link.drop(new Error('test: drop with one delivery held'));
    const again = await other.broker.fetch({ queues: [q], max: 10, leaseMs: LEASE, waitMs: 5_000 });
    expect(again.map((d) => d.message.id)).toEqual([held!.message.id]);
    expect(await other.broker.fetch({ queues: [q], max: 10, leaseMs: LEASE, waitMs: 300 })).toEqual([]);
    await again[0]!.ack();
  });

  it('sends the frames written in one tick in a few socket writes, not one each', async () => {
    const q = fx.track(uniqueQueue('am'));
    await fx.broker.publish([makeMessage(q)], KEY_TTL); // declares the queue: the next publish takes the fast path
    const model = (await fx.broker.link.session()).model;
    const socket = (model as unknown as { connection: { stream: { _write: Function; _writev: Function } } }).connection.stream;
    let writes = 0;
    const { _write, _writev } = socket;
    socket._write = function (...args: unknown[]) {
      writes++;
      return _write.apply(this, args);
    };
    socket._writev = function (...args: unknown[]) {
      writes++;
      return _writev.apply(this, args);
    };
    try {
      await fx.broker.publish(Array.from({ length: 100 }, (_, i) => makeMessage(q, { payload: { i } })), KEY_TTL);
    } finally {
      Object.assign(socket, { _write, _writev });
    }
    // 100 publishes of ~400 bytes: one write per 16 KiB of socket buffer, not 100 writes.
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThanOrEqual(10);
    expect(await collect(fx, q, 101)).toHaveLength(101);
  });

  it('fails fast with a clear error when RabbitMQ is not there', async () => {
    await expect(new AmqpBroker('amqp://guest:guest@127.0.0.1:1').connect()).rejects.toThrow(/cannot connect to amqp:\/\/guest:\*\*\*@127.0.0.1:1/);
  });
});
