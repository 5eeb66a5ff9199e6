import { nextAttempt, type Delivery } from '@celeriac/core';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };

// Issue 8, defect 7: times a client sends (eta, retry and release `at`) are on ITS clock. Here
// this process' Date.now runs 3 s off from Redis' TIME (the same machine: only the skew differs),
// and every delay must still last what it says, measured with the monotonic performance.now().
describe('redis: a client whose clock is skewed from the server', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('clock');
  });
  afterAll(() => fx?.close());
  afterEach(() => vi.restoreAllMocks());

  const skew = (ms: number) => {
    const real = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => real() + ms);
  };
  /** Fetches one message and reports how long it took to come, on the monotonic clock. */
  const timeNext = async (q: string, from: number, waitMs = 6_000): Promise<{ d: Delivery; ms: number }> => {
    const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs });
    expect(d).toBeDefined();
    return { d: d!, ms: performance.now() - from };
  };
  const take = async (q: string) => (await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 2_000 }))[0]!;

  it('a "key busy, try again in 1 s" release from a client 3 s behind waits 1 s (no hot loop)', async () => {
    skew(-3_000);
    const q = uniqueQueue();
    await fx.broker.publish([makeMessage(q)], KEY_TTL);
    let releases = 0;
    const started = performance.now();
    // What the executor does on a busy key, for 1.5 s: before the fix each release came straight
    // back, thousands of times.
    while (performance.now() - started < 1_500) {
      const [d] = await fx.broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_500 - (performance.now() - started) });
      if (!d) break;
      releases++;
      await d.release(Date.now() + 1_000);
    }
    expect(releases).toBeLessThanOrEqual(2);
  });

  it('a retry from a client 3 s behind does not come early', async () => {
    skew(-3_000);
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await fx.broker.publish([msg], KEY_TTL);
    const d = await take(q);
    const at = Date.now() + 1_000;
    const from = performance.now();
    await d.retry(nextAttempt(msg, 1, { name: 'Error', message: 'boom' }, at), at);
    const { d: again, ms } = await timeNext(q, from);
    expect(again.message.attempt).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(950);
    await again.ack();
  });

  it('an eta from a client 3 s behind is not early, and one from a client 3 s ahead is not late', async () => {
    skew(-3_000);
    const q = uniqueQueue();
    let from = performance.now();
    await fx.broker.publish([makeMessage(q, { eta: Date.now() + 1_000 })], KEY_TTL);
    const behind = await timeNext(q, from);
    expect(behind.ms).toBeGreaterThanOrEqual(950);
    await behind.d.ack();

    vi.restoreAllMocks();
    skew(3_000);
    from = performance.now();
    await fx.broker.publish([makeMessage(q, { eta: Date.now() + 1_000 })], KEY_TTL);
    const ahead = await timeNext(q, from);
    expect(ahead.ms).toBeGreaterThanOrEqual(950);
    expect(ahead.ms).toBeLessThan(3_000); // not the 4 s a raw comparison would make it
    await ahead.d.ack();
  });

  it('a delayed release from a client 3 s ahead comes when due, not 3 s late', async () => {
    skew(3_000);
    const q = uniqueQueue();
    await fx.broker.publish([makeMessage(q)], KEY_TTL);
    const d = await take(q);
    const from = performance.now();
    await d.release(Date.now() + 500);
    const { d: again, ms } = await timeNext(q, from);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(2_500);
    await again.ack();
  });
});
