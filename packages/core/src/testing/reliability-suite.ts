import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BROKER_OPTIONS, type Broker, type BrokerOptions } from '../broker.js';
import { attemptOf, nextAttempt } from '../retry.js';
import { collect } from './broker-suite.js';
import type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LONG_LEASE = 30_000;
const MAX_BYTES = 4_096;
const MAX_DEAD = 3;
const DEAD_AGE_MS = 2_000;

/**
 * Rules of the broker contract that issue 8 added: lapse counting and where a reclaimed message
 * goes, fairness across the queues of a fetch, the size limit, and dead-letter retention. The last
 * two need a broker built with small `BrokerOptions`, so these fixtures come from `factory(options)`.
 */
export function describeReliabilityRules(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  const shortLease = options.shortLeaseMs ?? 250;

  describe(`${name}: leases, fairness and limits`, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    beforeAll(async () => {
      fx = await factory();
      broker = fx.broker;
    });
    afterAll(async () => fx?.close());

    const fetchOne = async (queue: string, leaseMs: number, waitMs: number) => {
      const [d, ...rest] = await broker.fetch({ queues: [queue], max: 1, leaseMs, waitMs });
      expect(rest).toEqual([]);
      expect(d, `a delivery from ${queue} within ${waitMs} ms`).toBeDefined();
      return d!;
    };

    it('counts lease lapses: 0 at first, +1 per lapse, unchanged by release, 0 after retry', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const first = await fetchOne(q, shortLease, 2_000);
      expect(first.lapses).toBe(0);
      // Nobody settles `first`: its lease lapses, as when the consumer died mid-task.
      const second = await fetchOne(q, shortLease, shortLease * 8);
      expect([second.message.id, second.lapses]).toEqual([msg.id, 1]);
      const third = await fetchOne(q, LONG_LEASE, shortLease * 8);
      expect(third.lapses).toBe(2);
      await third.release();
      const fourth = await fetchOne(q, LONG_LEASE, 2_000);
      expect(fourth.lapses).toBe(2);
      expect(attemptOf(fourth)).toBe(3);
      const at = Date.now();
      await fourth.retry(nextAttempt(fourth.message, attemptOf(fourth), { name: 'Error', message: 'boom' }, at), at);
      const fifth = await fetchOne(q, LONG_LEASE, 2_000);
      expect(fifth.lapses).toBe(0);
      expect(fifth.message).toMatchObject({ id: msg.id, attempt: 4, lastError: { message: 'boom' } });
      await fifth.ack();
    });

    it('redelivers a lapsed message ahead of the messages already waiting at its priority', async () => {
      const q = uniqueQueue();
      const lapsed = makeMessage(q, { payload: { which: 'lapsed' } });
      await broker.publish([lapsed], KEY_TTL);
      await fetchOne(q, shortLease, 2_000);
      const waiting = [1, 2, 3].map((i) => makeMessage(q, { payload: { which: `waiting-${i}` } }));
      for (const m of waiting) await broker.publish([m], KEY_TTL);
      await broker.publish([makeMessage(q, { priority: 5, payload: { which: 'urgent' } })], KEY_TTL);
      await sleep(shortLease * 3);
      const got = await collect(broker, q, 5);
      expect(got.map((d) => d.message.payload)).toEqual([{ which: 'urgent' }, { which: 'lapsed' }, { which: 'waiting-1' }, { which: 'waiting-2' }, { which: 'waiting-3' }]);
      expect(got.map((d) => d.lapses)).toEqual([0, 1, 0, 0, 0]);
      await Promise.all(got.map((d) => d.ack()));
    });

    it('serves every queue of a fetch even while another holds higher priorities', async () => {
      const [busy, quiet] = [uniqueQueue(), uniqueQueue()];
      await broker.publish(Array.from({ length: 40 }, () => makeMessage(busy, { priority: 9 })), KEY_TTL);
      await broker.publish([makeMessage(quiet, { priority: 0 })], KEY_TTL);
      let quietAfter = -1;
      const taken = [];
      for (let i = 0; i < 4 && quietAfter < 0; i++) {
        const got = await broker.fetch({ queues: [busy, quiet], max: 4, leaseMs: LONG_LEASE, waitMs: 1_000 });
        taken.push(...got);
        if (got.some((d) => d.message.queue === quiet)) quietAfter = taken.length;
      }
      // 4 fetches of 4 could take 16 of the 40 priority-9 messages; the quiet queue must get its turn first.
      expect(quietAfter).toBeGreaterThan(0);
      await Promise.all(taken.map((d) => d.ack()));
    });
  });

  describe(`${name}: size limit and dead-letter count (maxMessageBytes ${MAX_BYTES}, deadLetters.maxCount ${MAX_DEAD})`, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    beforeAll(async () => {
      fx = await factory(withOptions({ maxMessageBytes: MAX_BYTES, deadLetters: { maxCount: MAX_DEAD, maxAgeMs: DEFAULT_BROKER_OPTIONS.deadLetters.maxAgeMs } }));
      broker = fx.broker;
    });
    afterAll(async () => fx?.close());

    it('keeps the newest maxCount dead letters of a queue', async () => {
      const q = uniqueQueue();
      const msgs = Array.from({ length: MAX_DEAD + 2 }, (_, i) => makeMessage(q, { payload: { i } }));
      await broker.publish(msgs, KEY_TTL);
      const got = await collect(broker, q, msgs.length);
      for (const d of got) await d.deadLetter(`dead #${(d.message.payload as { i: number }).i}`);
      const dead = await broker.deadLetters(q);
      expect(dead.map((d) => d.reason)).toEqual(['dead #2', 'dead #3', 'dead #4']);
      expect((await broker.stats(q)).dead).toBe(MAX_DEAD);
    });

    it('refuses an oversized publish with the limit named, sending nothing of the batch', async () => {
      const q = uniqueQueue();
      const small = makeMessage(q);
      const big = makeMessage(q, { payload: { blob: 'x'.repeat(MAX_BYTES) } });
      await expect(broker.publish([small, big], KEY_TTL)).rejects.toMatchObject({ name: 'ValidationError', code: 'INVALID_MESSAGE', message: expect.stringMatching(/^message too large: .* over the limit of 4096 \(maxMessageBytes\)/) });
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 300 })).toEqual([]);
      expect(await broker.publish([small], KEY_TTL)).toEqual([{ id: small.id, duplicate: false }]);
      const got = await collect(broker, q, 1);
      await got[0]!.ack();
    });

    it('dead-letters oversized and misrouted arrivals with their reasons, and keeps going', async () => {
      const q = uniqueQueue();
      const oversized = JSON.stringify(makeMessage(q, { payload: { blob: 'x'.repeat(MAX_BYTES) } }));
      const misrouted = JSON.stringify(makeMessage(uniqueQueue()));
      await fx.injectRaw(q, oversized);
      await fx.injectRaw(q, misrouted);
      const good = makeMessage(q);
      await broker.publish([good], KEY_TTL);
      const got = await collect(broker, q, 1);
      expect(got.map((d) => d.message.id)).toEqual([good.id]);
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 300 })).toEqual([]);
      const dead = await broker.deadLetters(q);
      const byRaw = new Map(dead.map((d) => [d.raw, d.reason]));
      expect(byRaw.get(oversized)).toMatch(/^oversized message: \d+ bytes, over the limit of 4096 \(maxMessageBytes\)/);
      expect(byRaw.get(misrouted)).toMatch(/^misrouted message: its envelope names queue "[^"]+" but it arrived on "[^"]+"/);
      expect(dead).toHaveLength(2);
      await got[0]!.ack();
    });
  });

  describe(`${name}: dead-letter age (deadLetters.maxAgeMs ${DEAD_AGE_MS})`, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    beforeAll(async () => {
      fx = await factory(withOptions({ deadLetters: { maxCount: DEFAULT_BROKER_OPTIONS.deadLetters.maxCount, maxAgeMs: DEAD_AGE_MS } }));
      broker = fx.broker;
    });
    afterAll(async () => fx?.close());

    it('drops dead letters older than maxAgeMs', async () => {
      const q = uniqueQueue();
      const [old, fresh] = [makeMessage(q, { payload: { which: 'old' } }), makeMessage(q, { payload: { which: 'fresh' } })];
      await broker.publish([old], KEY_TTL);
      await (await collect(broker, q, 1))[0]!.deadLetter('old');
      await sleep(DEAD_AGE_MS + 1_000);
      await broker.publish([fresh], KEY_TTL);
      await (await collect(broker, q, 1))[0]!.deadLetter('fresh');
      expect((await broker.deadLetters(q)).map((d) => d.reason)).toEqual(['fresh']);
    });
  });
}

function withOptions(o: Partial<BrokerOptions>): BrokerOptions {
  return { ...DEFAULT_BROKER_OPTIONS, ...o };
}
