import { MAX_PEEK_BYTES } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import amqp, { type Channel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { letterIdOf } from './dead.js';
import type { Link } from './link.js';
import { readDeadLetters } from './stats.js';
import { AMQP_URL } from './testing.js';

// Issue 8, defect 15: dead letters grew without bound. `<queue>:dead` keeps BrokerOptions.deadLetters
// (count and age), also when it exists from an older version with no retention arguments.
describe('amqp: dead-letter retention', () => {
  let raw: amqp.ChannelModel;
  const brokers: AmqpBroker[] = [];
  const queues: string[] = [];
  beforeAll(async () => {
    raw = await amqp.connect(AMQP_URL);
  });
  afterAll(async () => {
    for (const b of brokers) {
      queues.push(...b.declaredQueues);
      await b.close();
    }
    const ch = await raw.createChannel();
    for (const n of queues) await ch.deleteQueue(n).catch(() => {});
    await raw.close();
  });

  async function broker(deadLetters: { maxCount: number; maxAgeMs: number }): Promise<AmqpBroker> {
    const b = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20, deadLetters }).connect();
    brokers.push(b);
    return b;
  }

  /** Malformed messages on the work queue: each fetch buries them, in order. */
  async function bury(b: AmqpBroker, q: string, bodies: string[]): Promise<void> {
    queues.push(q, `${q}:dead`);
    const ch = await raw.createChannel();
    await ch.assertQueue(q, { durable: true, arguments: { 'x-max-priority': 9 } });
    for (const body of bodies) ch.sendToQueue(q, Buffer.from(body), { persistent: true });
    await ch.close();
    expect(await b.fetch({ queues: [q], max: 100, leaseMs: 30_000, waitMs: 500 })).toEqual([]);
  }

  const deadCount = async (q: string) => {
    const ch = await raw.createChannel();
    try {
      return (await ch.checkQueue(`${q}:dead`)).messageCount;
    } finally {
      await ch.close().catch(() => {});
    }
  };

  it('keeps the newest maxCount dead letters', async () => {
    const b = await broker({ maxCount: 3, maxAgeMs: 60_000 });
    const q = uniqueQueue('ad');
    await bury(b, q, ['bad-0', 'bad-1', 'bad-2', 'bad-3', 'bad-4']);
    expect((await b.deadLetters(q)).map((d) => d.raw)).toEqual(['bad-2', 'bad-3', 'bad-4']);
  });

  it('drops dead letters older than maxAgeMs', async () => {
    const b = await broker({ maxCount: 100, maxAgeMs: 300 });
    const q = uniqueQueue('ad');
    await bury(b, q, ['old-0', 'old-1']);
    await sleep(1_000);
    expect(await b.deadLetters(q)).toEqual([]);
    expect((await b.stats(q)).dead).toBe(0);
  });

  it('keeps the limits on a dead queue declared before retention existed (no PRECONDITION_FAILED)', async () => {
    const q = uniqueQueue('ad');
    // As an older celeriac left it: no x-max-length, no x-message-ttl, three dead letters, one a day old.
    const ch = await raw.createChannel();
    await ch.assertQueue(`${q}:dead`, { durable: true });
    const day = Date.now() - 86_400_000;
    ch.sendToQueue(`${q}:dead`, Buffer.from('ancient'), { headers: { 'x-celeriac-dead-at': day, 'x-celeriac-reason': 'old' } });
    for (const i of [1, 2]) ch.sendToQueue(`${q}:dead`, Buffer.from(`kept-${i}`), { headers: { 'x-celeriac-dead-at': Date.now(), 'x-celeriac-reason': 'old' } });
    await ch.close();
    const b = await broker({ maxCount: 3, maxAgeMs: 3_600_000 });
    await bury(b, q, ['new-0', 'new-1']);
    // Trimmed by this client after the burials: the oldest beyond three (the day-old one first).
    const deadline = Date.now() + 5_000;
    while ((await deadCount(q)) > 3 && Date.now() < deadline) await sleep(50);
    expect((await b.deadLetters(q)).map((d) => d.raw)).toEqual(['kept-2', 'new-0', 'new-1']);
  });

  // A listing holds the letters unacked while it reads them (a redrive walking the queue misses
  // them then): it stops once their bodies reach MAX_PEEK_BYTES; deadLetterIds still sees them all.
  it('lists the oldest letters up to the byte budget, fewer than the limit; deadLetterIds lists them all', async () => {
    const b = await broker({ maxCount: 100, maxAgeMs: 60_000 });
    const q = uniqueQueue('ad');
    const body = 900 * 1024;
    const fits = Math.ceil(MAX_PEEK_BYTES / body);
    const bodies = Array.from({ length: fits + 2 }, (_, i) => `${i} ${'x'.repeat(body)}`);
    await bury(b, q, bodies);
    const listed = await b.deadLetters(q, 100);
    expect(listed.map((d) => d.raw.split(' ')[0])).toEqual(bodies.slice(0, fits).map((_, i) => String(i)));
    expect(await b.deadLetterIds(q)).toHaveLength(bodies.length);
    expect(await deadCount(q)).toBe(bodies.length);
  });

  // Issue 11: deadLetterIds read every letter whole and kept all the bodies until the end of the
  // walk (10,000 letters of 1 MiB held at once). Each message is now mapped to what is kept as it
  // is read, before the next one is fetched, and only the mapped value stays.
  it('maps each letter as it is read and keeps only what the mapper returns (ids, no bodies)', async () => {
    const b = await broker({ maxCount: 100, maxAgeMs: 60_000 });
    const q = uniqueQueue('ad');
    await bury(b, q, ['bad-0', 'bad-1', 'bad-2']);
    const steps: string[] = [];
    const watched = {
      withChannel: <T>(work: (ch: Channel) => Promise<T>) =>
        b.link.withChannel((ch) => {
          const get = ch.get.bind(ch);
          ch.get = (...args) => {
            steps.push('get');
            return get(...args);
          };
          return work(ch);
        }),
    } as Link;
    const ids = await readDeadLetters(watched, q, 100, Number.POSITIVE_INFINITY, (msg) => {
      steps.push('map');
      return letterIdOf(msg);
    });
    const letters = await b.deadLetters(q);
    expect(ids).toEqual(letters.map((d) => d.id));
    expect(new Set(ids).size).toBe(3);
    expect(steps).toEqual(['get', 'map', 'get', 'map', 'get', 'map', 'get']);
    expect(await b.deadLetterIds(q)).toEqual(ids);
  });
});
