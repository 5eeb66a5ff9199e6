import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createApp, LeaseLostError, MemoryBroker, MemoryResultBackend, type App, type Delivery, type ResultBackend } from '@celeriac/core';
import { stallable, uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';
import { LeaseKeeper } from './lease-keeper.js';

const LEASE = 3_000; // renewals every 1 s, rounds bounded at 900 ms, abort 500 ms before a lease lapses

/** The delivery's own methods, as a plain object (to replace one of them). */
function cutOff(d: Delivery): Delivery {
  return {
    message: d.message,
    token: d.token,
    lapses: d.lapses,
    ack: (s) => d.ack(s),
    retry: (next, at) => d.retry(next, at),
    deadLetter: (reason, s) => d.deadLetter(reason, s),
    release: (at) => d.release(at),
  };
}

const apps: App[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A worker's executor and lease keeper, without the fetch loop: the test hands deliveries over. */
async function setup(options: { broker?: MemoryBroker; results?: ResultBackend; wrapBroker?: boolean } = {}) {
  const real = options.broker ?? new MemoryBroker();
  const broker = { target: real, state: stallable(real, ['renew']) };
  const queue = uniqueQueue('lk');
  const app = createApp({ broker: broker.target, ...(options.results ? { results: options.results } : {}), defaultQueue: queue });
  apps.push(app);
  const aborts: { at: number; reason: unknown }[] = [];
  const started = { count: 0 };
  const t = app.task('waits', { input: z.object({}) }, (_, ctx) => {
    started.count++;
    const signal = ctx.signal;
    return new Promise((_, reject) =>
      signal.addEventListener('abort', () => {
        aborts.push({ at: Date.now(), reason: signal.reason });
        reject(signal.reason);
      }),
    );
  });
  const quick = app.task('quick', { input: z.object({}) }, () => 'done');
  const conn = await app.connection();
  const executor = new Executor(app, conn, 4, LEASE, () => {});
  const keeper = new LeaseKeeper(app, conn, executor, LEASE);
  const take = async (): Promise<Delivery> => {
    const [d] = await real.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 });
    if (!d) throw new Error('nothing to fetch');
    return d;
  };
  return { app, real, broker, queue, t, quick, executor, keeper, aborts, take, started };
}

describe('LeaseKeeper', () => {
  it('aborts an attempt whose lease went to another consumer', async () => {
    const { t, executor, keeper, aborts, take, started } = await setup();
    await t.enqueue({});
    const d = await take();
    executor.run(d);
    await vi.waitFor(() => expect(started.count).toBe(1));
    await d.release(); // the message goes back to the queue behind the worker's back…
    await take(); // …and another consumer holds it now
    await keeper.renewNow();
    expect(aborts).toEqual([{ at: expect.any(Number), reason: expect.any(LeaseLostError) }]);
    expect(await executor.waitIdle(1_000)).toBe(true);
  });

  it('aborts before the lease lapses when the broker stops answering renewals (local deadline)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { real, broker, queue, t, executor, keeper, aborts, take } = await setup();
    await t.enqueue({});
    const t0 = Date.now();
    const d = await take();
    // Cut off, the worker cannot give the message back either.
    executor.run({ ...cutOff(d), release: () => (broker.state.stalled ? new Promise<void>(() => {}) : d.release()) }, t0);
    keeper.start();
    await vi.advanceTimersByTimeAsync(1_000); // renewed at t0 + 1 s: valid until t0 + 4 s
    broker.state.stalled = true;
    await vi.advanceTimersByTimeAsync(2_499);
    expect(aborts).toEqual([]); // renewals at +2 s and +3 s unanswered, but the lease still holds
    await vi.advanceTimersByTimeAsync(1);
    expect(aborts).toEqual([{ at: t0 + 3_500, reason: expect.any(LeaseLostError) }]);
    // The broker still holds the lease for this worker: nobody else could have started the task yet.
    expect(await real.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 })).toEqual([]);
    keeper.stop();
  });

  it('recovers when a stalled renewal round gives way to an answered one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { broker, t, executor, keeper, aborts, take } = await setup();
    await t.enqueue({});
    executor.run(await take());
    keeper.start();
    await vi.advanceTimersByTimeAsync(1_000);
    broker.state.stalled = true;
    await vi.advanceTimersByTimeAsync(1_950); // the round sent at +2 s never answers
    broker.state.stalled = false;
    await vi.advanceTimersByTimeAsync(3_000); // +3 s: a new round goes out and is confirmed
    expect(broker.state.calls).toBeGreaterThanOrEqual(4);
    expect(aborts).toEqual([]);
    keeper.stop();
  });

  it("renews the broker's leases while the store stalls, and gives up on the store's claims in time", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const storeTarget = new MemoryResultBackend();
    const store = { target: storeTarget, state: stallable(storeTarget, ['claimKey', 'claimTask']) };
    const { real, queue, broker, t, executor, keeper, aborts, take } = await setup({ results: store.target });
    await t.enqueue({}, { idempotencyKey: 'k' });
    const t0 = Date.now();
    executor.run(await take(), t0);
    // Fake time stands still meanwhile: both claims are sent at t0.
    for (let i = 0; i < 100 && store.state.calls < 2; i++) await vi.advanceTimersByTimeAsync(0);
    expect(store.state.calls).toBe(2); // the key claim, then the task claim (the store is apart)
    store.state.stalled = true;
    keeper.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(broker.state.calls).toBe(2); // the broker chain went on at +1 s and +2 s
    expect(aborts).toEqual([]);
    await vi.advanceTimersByTimeAsync(500); // the claims, taken at t0, were never confirmed again
    expect(aborts).toEqual([{ at: t0 + 2_500, reason: expect.any(LeaseLostError) }]);
    // The broker still leased it to this worker: it went back to the queue, not left to lapse as a crash.
    expect(await real.stats(queue)).toMatchObject({ ready: 1, inFlight: 0 });
    keeper.stop();
  });

  it('stops waiting for a settlement stuck on a partitioned broker once the lease is lost, freeing its slot', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const { broker, quick, executor, keeper, take } = await setup();
    await quick.enqueue({});
    const d = await take();
    const stuck: Delivery = { ...cutOff(d), ack: () => new Promise<void>(() => {}) }; // the broker never answers
    broker.state.stalled = true; // nor does it answer renewals
    executor.run(stuck, Date.now());
    keeper.start();
    await vi.advanceTimersByTimeAsync(2_499);
    expect(executor.running).toBe(0); // the handler returned…
    expect(executor.unsettled()).toHaveLength(1); // …but its settlement is still out
    await vi.advanceTimersByTimeAsync(1);
    expect(executor.unsettled()).toHaveLength(0);
    expect(await executor.waitIdle(0)).toBe(true);
    keeper.stop();
  });
});
