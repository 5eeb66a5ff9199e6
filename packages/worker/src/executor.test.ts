import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, MemoryBroker, type App, type Delivery } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';

const LEASE = 30_000;
const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A real delivery whose ack waits until the test lets it through (a slow broker). */
function slowAck(d: Delivery, held: (() => void)[]): Delivery {
  return {
    message: d.message,
    token: d.token,
    lapses: d.lapses,
    ack: (s) => new Promise<void>((resolve, reject) => held.push(() => d.ack(s).then(resolve, reject))),
    retry: (next, at) => d.retry(next, at),
    deadLetter: (reason, s) => d.deadLetter(reason, s),
    release: (at) => d.release(at),
  };
}

describe('Executor', () => {
  it('frees a slot when the handler returns, and never holds more than 2 × concurrency deliveries still settling', async () => {
    const broker = new MemoryBroker();
    const queue = uniqueQueue('ex');
    const app = createApp({ broker, defaultQueue: queue });
    apps.push(app);
    const t = app.task('quick', { input: z.object({}) }, () => 'done');
    await t.enqueueMany(Array.from({ length: 6 }, () => ({ payload: {} })));
    const executor = new Executor(app, await app.connection(), 2, LEASE, () => {});
    const held: (() => void)[] = [];
    const take = async (n: number) => {
      for (const d of await broker.fetch({ queues: [queue], max: n, leaseMs: LEASE, waitMs: 0 })) executor.run(slowAck(d, held));
    };
    await take(2);
    expect(executor.free).toBe(0);
    await expect.poll(() => held.length).toBe(2); // both handlers returned; their acks wait
    expect(executor.running).toBe(0);
    expect(executor.free).toBe(2); // the next fetch overlaps the acks in flight…
    await take(2);
    await expect.poll(() => held.length).toBe(4);
    expect(executor.free).toBe(0); // …but no more than 2 × concurrency deliveries wait on their acks
    const slot = executor.waitForSlot(new AbortController().signal);
    let woken = false;
    void slot.then(() => (woken = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woken).toBe(false);
    held.shift()!();
    await slot;
    expect(executor.free).toBe(1);
    for (const release of held.splice(0)) release();
    expect(await executor.waitIdle(1_000)).toBe(true);
    expect(await broker.stats(queue)).toMatchObject({ completed: 4, inFlight: 0, ready: 2 });
  });
});
