import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PEEK, type Broker, type PeekOptions } from '../broker.js';
import type { TaskMessage } from '../envelope.js';
import { nextAttempt } from '../retry.js';
import { collect } from './broker-suite.js';
import type { BrokerFactory, BrokerFixture } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LONG_LEASE = 30_000;
/** How far a listed due time may sit from the one asked for: Redis keeps due times on its own clock (skew plus latency). */
const CLOCK_SLACK_MS = 2_000;

/**
 * `Broker.peek` (see broker.ts): waiting messages listed without taking them. An optional method:
 * the broker contract registers this block only for a broker that has it (see `offersPeek`).
 */
export function describePeekRules(factory: BrokerFactory): void {
  describe('peek', () => {
    let fx: BrokerFixture;
    let broker: Broker;
    beforeAll(async () => {
      fx = await factory();
      broker = fx.broker;
    });
    afterAll(async () => fx?.close());

    const peek = (queue: string, state: PeekOptions['state'], limit = 100) => broker.peek!(queue, { state, limit });
    const ids = (messages: TaskMessage[]) => messages.map((m) => m.id);
    const fetchAll = (queue: string, max = 100) => broker.fetch({ queues: [queue], max, leaseMs: LONG_LEASE, waitMs: 2_000 });

    it('lists ready messages in the order a fetch takes them: priority, then time', async () => {
      const q = uniqueQueue();
      const msgs = [0, 5, 9, 5, 0, 9].map((priority, i) => makeMessage(q, { priority, payload: { i } }));
      for (const m of msgs) await broker.publish([m], KEY_TTL);
      const listed = await peek(q, 'ready');
      expect(listed.map((m) => m.payload)).toEqual([{ i: 2 }, { i: 5 }, { i: 1 }, { i: 3 }, { i: 0 }, { i: 4 }]);
      expect(listed[0]).toEqual(msgs[2]);
      expect(await peek(q, 'delayed')).toEqual([]);
      const got = await collect(broker, q, msgs.length);
      expect(got.map((d) => d.message.id)).toEqual(ids(listed));
      await Promise.all(got.map((d) => d.ack()));
    });

    it('lists delayed messages soonest first with their due time as eta: retries and releases to later too', async () => {
      const q = uniqueQueue();
      const now = Date.now();
      const [retried, released] = [makeMessage(q), makeMessage(q)];
      await broker.publish([retried, released], KEY_TTL);
      const taken = await collect(broker, q, 2);
      const of = (id: string) => taken.find((d) => d.message.id === id)!;
      const retryAt = now + 15_000;
      await of(retried.id).retry(nextAttempt(of(retried.id).message, 1, { name: 'Error', message: 'boom' }, retryAt), retryAt);
      await of(released.id).release(now + 25_000);
      const [a, b, c] = [30_000, 10_000, 20_000].map((ms) => makeMessage(q, { eta: now + ms }));
      const ready = makeMessage(q);
      await broker.publish([a!, b!, c!, ready], KEY_TTL);

      const delayed = await peek(q, 'delayed');
      expect(ids(delayed)).toEqual([b!.id, retried.id, c!.id, released.id, a!.id]);
      const expected = [now + 10_000, retryAt, now + 20_000, now + 25_000, now + 30_000];
      delayed.forEach((m, i) => expect(Math.abs(m.eta! - expected[i]!)).toBeLessThan(CLOCK_SLACK_MS));
      expect(delayed[1]).toMatchObject({ attempt: 2, lastError: { message: 'boom' } });
      expect(delayed[0]).toEqual({ ...b, eta: delayed[0]!.eta });
      expect(ids(await peek(q, 'ready'))).toEqual([ready.id]);
    });

    it('lists at most `limit` (cut to MAX_PEEK), and refuses a bad limit, state or queue name', async () => {
      const q = uniqueQueue();
      const msgs = Array.from({ length: 5 }, (_, i) => makeMessage(q, { payload: { i } }));
      for (const m of msgs) await broker.publish([m], KEY_TTL);
      expect(ids(await peek(q, 'ready', 2))).toEqual(ids(msgs.slice(0, 2)));
      expect(ids(await peek(q, 'ready', MAX_PEEK * 1_000))).toEqual(ids(msgs));
      expect(await peek(uniqueQueue(), 'ready')).toEqual([]);
      for (const limit of [0, -1, 1.5, Number.NaN, '3' as unknown as number]) {
        await expect(peek(q, 'ready', limit)).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('peek limit') });
      }
      await expect(peek(q, 'dead' as PeekOptions['state'])).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('peek state') });
      await expect(peek('a b', 'ready')).rejects.toMatchObject({ code: 'INVALID_NAME' });
    });

    it('leaves leased messages out, and takes no lease itself', async () => {
      const q = uniqueQueue();
      const msgs = [makeMessage(q), makeMessage(q), makeMessage(q)];
      for (const m of msgs) await broker.publish([m], KEY_TTL);
      expect(ids(await peek(q, 'ready'))).toEqual(ids(msgs));
      expect(ids(await peek(q, 'ready'))).toEqual(ids(msgs));
      const [first, ...none] = await fetchAll(q, 1);
      expect(none).toEqual([]);
      expect(first!.message.id).toBe(msgs[0]!.id);
      expect(ids(await peek(q, 'ready'))).toEqual(ids(msgs.slice(1)));
      expect(await peek(q, 'delayed')).toEqual([]);
      const rest = await collect(broker, q, 2);
      expect(rest.map((d) => d.message.id)).toEqual(ids(msgs.slice(1)));
      await Promise.all([first!, ...rest].map((d) => d.ack()));
      expect(await peek(q, 'ready')).toEqual([]);
    });

    it('lists a delayed message that came due as ready, ahead of one published after it', async () => {
      const q = uniqueQueue();
      const due = makeMessage(q, { eta: Date.now() + 100 });
      await broker.publish([due], KEY_TTL);
      await sleep(400);
      expect(ids(await peek(q, 'ready'))).toEqual([due.id]);
      expect(await peek(q, 'delayed')).toEqual([]);
      const fresh = makeMessage(q);
      await broker.publish([fresh], KEY_TTL);
      expect(ids(await peek(q, 'ready'))).toEqual([due.id, fresh.id]);
    });

    it('is emptied by a purge, both lists', async () => {
      const q = uniqueQueue();
      await broker.publish([makeMessage(q), makeMessage(q), makeMessage(q, { eta: Date.now() + 60_000 })], KEY_TTL);
      expect((await peek(q, 'ready')).length + (await peek(q, 'delayed')).length).toBe(3);
      expect(await broker.purge(q)).toBe(3);
      expect(await peek(q, 'ready')).toEqual([]);
      expect(await peek(q, 'delayed')).toEqual([]);
    });

    it('skips a message that does not parse (a fetch still dead-letters it)', async () => {
      const q = uniqueQueue();
      await fx.injectRaw(q, 'this is not json');
      const good = makeMessage(q);
      await broker.publish([good], KEY_TTL);
      expect(ids(await peek(q, 'ready'))).toEqual([good.id]);
      const got = await collect(broker, q, 1);
      expect(got.map((d) => d.message.id)).toEqual([good.id]);
      expect((await broker.deadLetters(q)).map((d) => d.raw)).toEqual(['this is not json']);
      await got[0]!.ack();
    });
  });
}

/** Whether the factory's brokers have `peek`: asked of a broker opened and closed for the purpose, while the suite is collected. */
export async function offersPeek(factory: BrokerFactory): Promise<boolean> {
  const fx = await factory();
  try {
    return typeof fx.broker.peek === 'function';
  } finally {
    await fx.close();
  }
}
