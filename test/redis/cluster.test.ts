import type { BrokerOptions } from '@celeriac/core';
import { describeBroker, makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, type RedisBroker } from '@celeriac/redis-backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureCluster, removeClusterPrefix } from './cluster.js';
import { uniquePrefix, urlWith } from './helpers.js';

async function clusterFixture(name: string, options?: BrokerOptions) {
  const url = await ensureCluster();
  const prefix = uniquePrefix(name);
  const broker = await connectRedisBroker(urlWith(prefix, url), options);
  return {
    broker,
    injectRaw: (queue: string, raw: string) => broker.injectRaw(queue, raw),
    close: async () => {
      await broker.close();
      await removeClusterPrefix(prefix);
    },
  };
}

// Every rule of the contract, on a real 3-node cluster: each queue's keys share one slot.
describeBroker('redis-cluster', (options) => clusterFixture('cconf', options));

describe('redis cluster: queues spread over nodes', () => {
  let fx: Awaited<ReturnType<typeof clusterFixture>>;
  let broker: RedisBroker;
  beforeAll(async () => {
    fx = await clusterFixture('cspread');
    broker = fx.broker;
  });
  afterAll(() => fx?.close());

  it('publishes, fetches, settles and waits for results across queues on different nodes', async () => {
    const queues = Array.from({ length: 6 }, () => uniqueQueue('cl'));
    const msgs = queues.flatMap((q) => Array.from({ length: 5 }, (_, i) => makeMessage(q, { payload: { i } })));
    // One publish call with messages for six queues: one script call per queue, routed by slot.
    const published = await broker.publish(msgs, { keyTtlMs: 60_000 });
    expect(published.every((p) => !p.duplicate)).toBe(true);
    const waits = msgs.map((m) => broker.results.wait(m, { timeoutMs: 10_000 }));
    const got = [];
    const deadline = Date.now() + 10_000;
    while (got.length < msgs.length && Date.now() < deadline) {
      got.push(...(await broker.fetch({ queues, max: 50, leaseMs: 30_000, waitMs: 500 })));
    }
    expect(new Set(got.map((d) => d.message.id)).size).toBe(msgs.length);
    await Promise.all(
      got.map((d) =>
        d.ack({
          record: { id: d.message.id, queue: d.message.queue, task: d.message.task, state: 'succeeded', value: d.message.payload, attempts: 1, finishedAt: Date.now(), idempotencyKey: null },
          ttlMs: 60_000,
          keyTtlMs: 60_000,
        }),
      ),
    );
    const records = await Promise.all(waits);
    expect(records.map((r) => r?.state)).toEqual(msgs.map(() => 'succeeded'));
    for (const q of queues) expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0, completed: 5 });
  });

  it('wakes a fetch blocked on several queues in different slots', async () => {
    const queues = [uniqueQueue('cw'), uniqueQueue('cw'), uniqueQueue('cw')];
    const pending = broker.fetch({ queues, max: 1, leaseMs: 30_000, waitMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    const msg = makeMessage(queues[2]!);
    const sent = Date.now();
    await broker.publish([msg], { keyTtlMs: 60_000 });
    const [d] = await pending;
    expect(d?.message.id).toBe(msg.id);
    expect(Date.now() - sent).toBeLessThan(1_000);
    await d!.ack();
  });
});
