import { DEFAULT_BROKER_OPTIONS, encodeMessage, type BrokerOptions } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, type RedisBroker } from '@celeriac/redis-backend';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };

// Issue 8, defects 13 and 15 (Redis): BrokerOptions reach the broker; arrivals are parsed with the
// size limit and the queue they came on; dead letters keep a bounded count and age.
describe('redis: BrokerOptions', () => {
  const prefix = uniquePrefix('opts');
  const brokers: RedisBroker[] = [];
  const open = async (options: Partial<BrokerOptions>) => {
    const broker = await connectRedisBroker(urlWith(prefix, REDIS_URL), { ...DEFAULT_BROKER_OPTIONS, ...options });
    brokers.push(broker);
    return broker;
  };
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.close()));
    await removePrefix(prefix);
  });

  it('dead-letters an oversized arrival and an envelope naming another queue, with the reason, and runs neither', async () => {
    const broker = await open({ maxMessageBytes: 2_048 });
    const producer = await open({}); // a producer with a higher limit (the default, 1 MiB)
    const q = uniqueQueue();
    const big = makeMessage(q, { payload: { blob: 'x'.repeat(4_000) } });
    const stray = makeMessage('some-other-queue');
    const fine = makeMessage(q);
    await producer.publish([big], KEY_TTL); // this broker's own publish would refuse it
    await broker.injectRaw(q, encodeMessage(stray));
    await broker.publish([fine], KEY_TTL);
    const got = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 1_000 });
    expect(got.map((d) => d.message.id)).toEqual([fine.id]);
    const dead = await broker.deadLetters(q);
    expect(dead.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^oversized message: \d+ bytes, over the limit of 2048 \(maxMessageBytes\)/),
      'misrouted message: its envelope names queue "some-other-queue" but it arrived on "' + q + '"',
    ]);
    expect(dead[0]!.raw).toBe(encodeMessage(big)); // kept whole, for inspection
    expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 1, dead: 2 });
    await got[0]!.ack();
  });

  it('keeps at most deadLetters.maxCount per queue, dropping the oldest as new ones come', async () => {
    const broker = await open({ deadLetters: { maxCount: 3, maxAgeMs: 60_000 } });
    const q = uniqueQueue();
    const msgs = Array.from({ length: 5 }, (_, i) => makeMessage(q, { payload: { i } }));
    await broker.publish(msgs, KEY_TTL);
    const got = await broker.fetch({ queues: [q], max: 5, leaseMs: 30_000, waitMs: 1_000 });
    for (const d of got) await d.deadLetter(`poison ${(d.message.payload as { i: number }).i}`);
    expect((await broker.deadLetters(q)).map((d) => d.reason)).toEqual(['poison 2', 'poison 3', 'poison 4']);
    expect((await broker.stats(q)).dead).toBe(3);
  });

  it('drops dead letters older than deadLetters.maxAgeMs, on the next push and on reading', async () => {
    const broker = await open({ deadLetters: { maxCount: 100, maxAgeMs: 1_000 } });
    const q = uniqueQueue();
    const msgs = Array.from({ length: 3 }, (_, i) => makeMessage(q, { payload: { i } }));
    await broker.publish(msgs, KEY_TTL);
    const got = await broker.fetch({ queues: [q], max: 3, leaseMs: 30_000, waitMs: 1_000 });
    await Promise.all(got.slice(0, 2).map((d) => d.deadLetter('old')));
    await sleep(1_300);
    await got[2]!.deadLetter('new');
    expect((await broker.deadLetters(q)).map((d) => d.reason)).toEqual(['new']);
    await sleep(1_300);
    expect(await broker.deadLetters(q)).toEqual([]);
    expect((await broker.stats(q)).dead).toBe(0);
  });
});
