import { AmqpBroker } from '@celeriac/amqp-backend';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, canControlRabbit, killConnection } from '../../packages/amqp-backend/src/testing.js';
import { canRunPrivateNode, privateNode } from '../support/private-rabbit.js';

// Crashes and outages of RabbitMQ itself, on the private node (port 5673): the shared node on 5672
// is never restarted. Issue 8, defects 9 (in-flight publishes rejected on a crash instead of
// resent) and 12 (an enqueue during an outage never settled).

const KEY_TTL = { keyTtlMs: 60_000 };

/** Every message id on `queue`, read from outside with a plain amqplib consumer (acked: drained). */
async function drain(queue: string, atLeast: number, withinMs = 10_000, url = privateNode.url): Promise<string[]> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    const ids: string[] = [];
    const deadline = Date.now() + withinMs;
    for (;;) {
      const msg = await ch.get(queue, { noAck: true });
      if (msg) ids.push(String(msg.properties.messageId));
      else if (ids.length >= atLeast || Date.now() > deadline) return ids;
      else await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Settles with the promise, or rejects with `what` once `ms` have passed (so a hang fails, not stalls). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

describe.skipIf(!canRunPrivateNode)('amqp: RabbitMQ crash and outage (private node)', () => {
  const brokers: AmqpBroker[] = [];
  const queues: string[] = [];
  const connect = async (options: ConstructorParameters<typeof AmqpBroker>[1]) => {
    const b = await new AmqpBroker(privateNode.url, { reconnectMinMs: 20, reconnectMaxMs: 300, replies: false, ...options }).connect();
    brokers.push(b);
    return b;
  };
  beforeAll(() => privateNode.start(), 120_000);
  afterEach(async () => {
    await privateNode.start(); // a failed test must not leave the node down for the next
    for (const b of brokers.splice(0)) await b.close().catch(() => {});
  }, 120_000);
  afterAll(async () => {
    // Even a private node should not fill up with test queues run after run.
    const conn = await amqp.connect(privateNode.url);
    const ch = await conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q).catch(() => {});
    await conn.close();
  }, 60_000);

  it('resends publishes in flight when RabbitMQ is SIGKILLed: every one resolves, none is lost (defect 9)', async () => {
    const q = uniqueQueue('crash');
    queues.push(q);
    const broker = await connect({ publishTimeoutMs: 120_000 });
    await broker.publish([makeMessage(q)], KEY_TTL); // declares the queue: the rest take the fast path
    const messages = Array.from({ length: 3_000 }, () => makeMessage(q));
    const outcomes: Promise<unknown>[] = [];
    let confirmed = 0;
    // Batches of 50 as a stream (a short pause every 5 batches lets confirms come back), killed once
    // 500 are confirmed: some are confirmed, some written and unconfirmed, some not yet written.
    const stream = (async () => {
      for (let i = 0; i < messages.length; i += 50) {
        const batch = messages.slice(i, i + 50);
        outcomes.push(broker.publish(batch, KEY_TTL).then(() => ((confirmed += batch.length), 'ok'), (err: Error) => err.message));
        if (i % 250 === 200) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await within((async () => { while (confirmed < 500) await new Promise((r) => setTimeout(r, 1)); })(), 30_000, 'first confirms');
    await privateNode.kill();
    expect(broker.unconfirmed).toBeGreaterThan(0); // the kill did land mid-flight
    await privateNode.start();
    await stream;
    const results = await within(Promise.all(outcomes), 60_000, 'publishes after the restart');
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
    const ids = new Set(await drain(q, messages.length + 1));
    expect(messages.filter((m) => !ids.has(m.id)).length).toBe(0); // every confirmed publish is there
    // Duplicates (a resend of what RabbitMQ had received but not confirmed) carry the same task id.
  }, 180_000);

  it('settles an enqueue during an outage within publishTimeoutMs, never sends it later, and keeps consumers reconnecting (defect 12)', async () => {
    const q = uniqueQueue('outage');
    queues.push(q);
    const producer = await connect({ publishTimeoutMs: 2_000 });
    const consumer = await connect({});
    const before = makeMessage(q);
    await producer.publish([before], KEY_TTL);
    await privateNode.stop();

    const during = makeMessage(q);
    const started = Date.now();
    const outcome = await within(producer.publish([during], KEY_TTL).then(() => 'resolved', (err: Error) => err), 15_000, 'enqueue during the outage');
    const tookMs = Date.now() - started;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/within 2000 ms: RabbitMQ was unreachable; the message was not sent and will not be/);
    expect(tookMs).toBeLessThan(10_000); // generous: the bound is 2 s

    // A worker's fetch started during the outage waits for the broker (reconnecting, backoff capped
    // at 300 ms here) and gets the message published before the stop once the node is back.
    const fetched = consumer.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1_500)); // several reconnect attempts fail meanwhile
    await privateNode.start();
    const deliveries = await within(fetched, 60_000, 'fetch across the outage');
    expect(deliveries.map((d) => d.message.id)).toEqual([before.id]);
    await deliveries[0]!.ack();

    // The producer reconnects too and publishes again; the timed-out message was never sent.
    const after = makeMessage(q);
    await within(producer.publish([after], KEY_TTL), 15_000, 'publish after the restart');
    expect(await drain(q, 1, 2_000)).toEqual([after.id]);
  }, 180_000);
});

describe.skipIf(!canControlRabbit)('amqp: connection closed by RabbitMQ mid-publish (shared node)', () => {
  it('resends what was unconfirmed on the next connection: every publish resolves, none is lost (defect 9)', async () => {
    const broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20, replies: false, publishTimeoutMs: 60_000 }).connect();
    const q = uniqueQueue('cut');
    try {
      await broker.publish([makeMessage(q)], KEY_TTL);
      // A steady stream until the connection is gone (rabbitmqctl takes a second or two), so the
      // close lands with publishes unconfirmed, whenever exactly it comes.
      const messages: ReturnType<typeof makeMessage>[] = [];
      const outcomes: Promise<unknown>[] = [];
      let closed = false;
      const stream = (async () => {
        while (!closed && messages.length < 30_000) {
          const batch = Array.from({ length: 50 }, () => makeMessage(q));
          messages.push(...batch);
          outcomes.push(broker.publish(batch, KEY_TTL).then(() => 'ok', (err: Error) => err.message));
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const gen = broker.link.current!.gen;
      expect(await killConnection(`celeriac:${broker.client}`)).toBe(1);
      await within((async () => { while (broker.link.current?.gen === gen) await new Promise((r) => setTimeout(r, 5)); })(), 10_000, 'the close');
      closed = true;
      await stream;
      const results = await within(Promise.all(outcomes), 60_000, 'publishes after the reconnect');
      expect(results.filter((r) => r !== 'ok')).toEqual([]);
      const ids = new Set(await drain(q, messages.length + 1, 10_000, AMQP_URL));
      expect(messages.filter((m) => !ids.has(m.id)).length).toBe(0);
    } finally {
      await broker.link.withChannel(async (ch) => void (await ch.deleteQueue(q))).catch(() => {});
      await broker.close();
    }
  }, 120_000);
});
