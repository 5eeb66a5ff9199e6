import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AMQP_URL, amqpFixture, canControlRabbit, rabbitEnv } from './testing.js';

const KEY_TTL = { keyTtlMs: 60_000 };
type Fixture = Awaited<ReturnType<typeof amqpFixture>>;

// RabbitMQ 3.10 has no per-queue x-consumer-timeout (3.12+), so the server-wide setting is lowered
// for this file only, and restored after. It applies to channels opened while it is set.
const TIMEOUT_MS = 1_500;

describe.skipIf(!canControlRabbit)('amqp: consumer_timeout (lowered to 1.5 s)', () => {
  let fx: Fixture;
  let saved: { timeout: number; tick: number };
  beforeAll(async () => {
    saved = { timeout: await rabbitEnv('consumer_timeout'), tick: await rabbitEnv('channel_tick_interval') };
    await rabbitEnv('consumer_timeout', TIMEOUT_MS);
    await rabbitEnv('channel_tick_interval', 250);
    fx = await amqpFixture({ rotateAfterMs: 600 });
  });
  afterAll(async () => {
    await fx?.close();
    if (saved) {
      await rabbitEnv('consumer_timeout', Number.isFinite(saved.timeout) ? saved.timeout : 1_800_000);
      await rabbitEnv('channel_tick_interval', Number.isFinite(saved.tick) ? saved.tick : 60_000);
    }
  });

  it('is really in force: a raw consumer holding a message too long loses its channel', async () => {
    const q = fx.track(uniqueQueue('at'));
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      const closed = new Promise<string>((resolve) => ch.on('error', (err: Error) => resolve(err.message)));
      await ch.assertQueue(q, { durable: true, arguments: { 'x-max-priority': 9 } });
      ch.sendToQueue(q, Buffer.from('x'));
      await ch.consume(q, () => {}, { noAck: false });
      expect(await closed).toMatch(/PRECONDITION_FAILED|timed out/);
    } finally {
      await conn.close().catch(() => {});
    }
  }, 15_000);

  it('keeps a long-running delivery past the timeout by rotating it, without redelivery', async () => {
    const q = fx.track(uniqueQueue('at'));
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 2_000, waitMs: 2_000 });
    // After the fetch: a 2 s lease has the broker reconnect once, before delivering, to fit its heartbeat.
    const gen = fx.broker.link.current!.gen;
    for (let held = 0; held < 3 * TIMEOUT_MS; held += 500) {
      await sleep(500);
      expect(await fx.broker.renew([d!], 2_000)).toEqual([true]);
    }
    expect(fx.broker.link.current!.gen).toBe(gen); // no channel was closed by RabbitMQ
    await d!.ack();
    expect(await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 2_000, waitMs: 1_000 })).toEqual([]);
    expect(await fx.broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0 });
  }, 20_000);

  it('waits out a delay longer than the timeout on the ladder, holding nothing unacked', async () => {
    const q = fx.track(uniqueQueue('at'));
    const gen = fx.broker.link.current!.gen;
    const eta = Date.now() + 2 * TIMEOUT_MS;
    await fx.broker.publish([makeMessage(q, { eta })], KEY_TTL);
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 5_000, waitMs: 10_000 });
    expect(Date.now()).toBeGreaterThanOrEqual(eta);
    await d!.ack();
    expect(fx.broker.link.current!.gen).toBe(gen);
  }, 20_000);
});
