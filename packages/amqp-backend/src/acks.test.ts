import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpFixture } from './testing.js';

type Fixture = Awaited<ReturnType<typeof amqpFixture>>;
const LEASE = 60_000;

// Issue 8, defect 8: one long task held unacked made every later ack rescan everything acked since
// (CPU per 50k acks 7 ms → 6 s). The work is counted, not timed: entries the coalescer examines.
describe('amqp: ack coalescing while one delivery stays unacked', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await amqpFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('does O(1) work per ack behind a long-held delivery, and still never acks the held one', async () => {
    const q = fx.track(uniqueQueue('ak'));
    const n = 1_500;
    await fx.broker.publish(Array.from({ length: n + 1 }, (_, i) => makeMessage(q, { payload: { i } })), { keyTtlMs: 60_000 });
    const got = [];
    while (got.length < n + 1) {
      const ds = await fx.broker.fetch({ queues: [q], max: n + 1, leaseMs: LEASE, waitMs: 2_000 });
      expect(ds.length).toBeGreaterThan(0);
      got.push(...ds);
    }
    const [held, ...rest] = got;
    const acks = fx.broker.link.current!.acks;
    const before = acks.scans;
    // One ack per tick, as tasks finishing one by one do: each flush runs on its own.
    for (const d of rest) {
      await d.ack();
      await new Promise((r) => setImmediate(r));
    }
    const perAck = (acks.scans - before) / rest.length;
    expect(perAck).toBeLessThanOrEqual(4);
    // The held delivery is still unacked at the broker: a dropped connection gives it back alone.
    fx.broker.link.drop(new Error('test: drop with the long task held'));
    const again = await fx.broker.fetch({ queues: [q], max: 10, leaseMs: LEASE, waitMs: 5_000 });
    expect(again.map((d) => d.message.id)).toEqual([held!.message.id]);
    await again[0]!.ack();
  }, 60_000);
});
