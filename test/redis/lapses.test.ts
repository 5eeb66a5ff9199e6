import { nextAttempt, type Delivery } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueKeys } from '../../packages/redis-backend/src/keys.js';
import { loadScripts } from '../../packages/redis-backend/src/scripts.js';
import { REDIS_URL, redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const SHORT = 150;

// Issue 8, defects 1 and 4 (Redis): lease lapses are counted per message (core turns them into
// spent attempts), a reclaimed task is served ahead of the backlog, and an idle fetcher takes over
// a lapsed lease within a bound derived from its leaseMs, not its blockMs.
describe('redis: lease lapses', () => {
  let fx: RedisFixture;
  let raw: Redis;
  beforeAll(async () => {
    fx = await redisFixture('lapse');
    raw = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    raw?.disconnect();
    await fx?.close();
  });

  const fetchOne = async (q: string, leaseMs: number): Promise<Delivery> => {
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs, waitMs: 2_000 });
    expect(d).toBeDefined();
    return d!;
  };
  /** Takes the message and lets its lease lapse, as a consumer that died would. */
  const lapse = async (q: string): Promise<void> => {
    await fetchOne(q, SHORT);
    await sleep(SHORT + 100);
  };
  const counter = (q: string, id: string) => raw.hget(`${fx.prefix}:{${q}}:lapses`, id);

  it('counts each lapse: a reclaim adds one, release keeps it, retry starts again at 0, ack and dead letter clear it', async () => {
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    expect((await fetchOne(q, SHORT)).lapses).toBe(0); // never settled: its consumer died
    await sleep(SHORT + 100);
    const second = await fetchOne(q, SHORT);
    expect(second.lapses).toBe(1);
    await sleep(SHORT + 100);
    const third = await fetchOne(q, 30_000);
    expect(third.lapses).toBe(2);
    await third.release();
    const fourth = await fetchOne(q, 30_000);
    expect(fourth.lapses).toBe(2); // a release is not a lapse, and does not forgive one
    await fourth.retry(nextAttempt(msg, 1, { name: 'Error', message: 'boom' }, Date.now()), Date.now());
    const retried = await fetchOne(q, SHORT);
    expect(retried.message.attempt).toBe(2);
    expect(retried.lapses).toBe(0); // the attempt number already counts the lapses before it
    await sleep(SHORT + 100);
    const last = await fetchOne(q, 30_000);
    expect(last.lapses).toBe(1);
    await last.ack();
    expect(await counter(q, msg.id)).toBeNull();

    const dead = makeMessage(q);
    await fx.broker.publish([dead], KEY_TTL);
    await lapse(q);
    const buried = await fetchOne(q, 30_000);
    expect(buried.lapses).toBe(1);
    await buried.deadLetter('deliveries kept dying');
    expect(await counter(q, dead.id)).toBeNull();
  });

  it('serves a reclaimed task ahead of the backlog of its priority', async () => {
    const q = uniqueQueue();
    const first = makeMessage(q);
    await fx.broker.publish([first], KEY_TTL);
    await fetchOne(q, SHORT); // its consumer dies
    const backlog = Array.from({ length: 5 }, () => makeMessage(q));
    await fx.broker.publish(backlog, KEY_TTL);
    await sleep(SHORT + 100);
    const order = await fx.broker.fetch({ queues: [q], max: 6, leaseMs: 30_000, waitMs: 1_000 });
    expect(order.map((d) => d.message.id)).toEqual([first.id, ...backlog.map((m) => m.id)]);
    await Promise.all(order.map((d) => d.ack()));
  });

  it('has an idle fetcher take over a lease that lapsed unseen within 1.5 × leaseMs, not after its whole wait', async () => {
    const q = uniqueQueue();
    const lease = 400;
    const keys = new QueueKeys(fx.prefix, q);
    const scripts = loadScripts();
    const idle = fx.broker.fetch({ queues: [q], max: 1, leaseMs: lease, waitMs: 10_000 });
    await sleep(100); // blocked in BLPOP
    // Another consumer publishes and leases the message in one transaction, so the idle fetcher
    // is never woken by the publish; that consumer then dies without renewing.
    const msg = makeMessage(q);
    const { lua: publish } = scripts.get('publish')!;
    const { lua: fetch } = scripts.get('fetch')!;
    const leasedAt = performance.now();
    const replies = await raw
      .multi()
      .eval(publish, 7, ...keys.main, keys.base, 60_000, Date.now(), msg.id, JSON.stringify(msg), 0, '', '')
      .eval(fetch, 7, ...keys.main, keys.base, 1, lease, 'dead-consumer', '')
      .exec();
    expect((replies![1]![1] as unknown[])[3]).toBe(msg.id); // the other consumer holds it
    const [taken] = await idle;
    const tookMs = performance.now() - leasedAt;
    expect(taken?.message.id).toBe(msg.id);
    expect(taken!.lapses).toBe(1);
    // Bound: lease end + one capped wait (leaseMs / 2) = 600 ms; generous for a loaded machine,
    // and far below the 10 s wait the fetcher would otherwise sit out.
    expect(tookMs).toBeGreaterThanOrEqual(lease - 20);
    expect(tookMs).toBeLessThan(3_000);
    await taken!.ack();
  });
});
