import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createApp, LeaseLostError, MemoryBroker, MemoryResultBackend, type App, type Delivery, type Logger } from '@celeriac/core';
import { stallable, uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';
import { LeaseKeeper } from './lease-keeper.js';

// The lease keeper's promises, on a fake clock: long tasks keep their lease and their key; a lost
// key claim ends the attempt at the next tick; each attempt is given up at its own deadline; a
// stopped or idle keeper is quiet; operators are told why.
const LEASE = 3_000; // ticks every 1 s, rounds bounded at 900 ms, give up 500 ms before a lapse
const FAKE: Parameters<typeof vi.useFakeTimers>[0] = { toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] };

const apps: App[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function setup() {
  const real = new MemoryBroker();
  const broker = { target: real, state: stallable(real, ['renew']) };
  const storeTarget = new MemoryResultBackend();
  const store = { target: storeTarget, state: stallable(storeTarget, ['claimKey']) };
  const queue = uniqueQueue('lkm');
  const warnings: { fields: object; msg: string }[] = [];
  const logger: Logger = { debug() {}, info() {}, error() {}, warn: (fields, msg) => void warnings.push({ fields: fields as object, msg: msg ?? '' }) };
  const app = createApp({ broker: broker.target, results: store.target, defaultQueue: queue, logger });
  apps.push(app);
  const aborts: { id: string; at: number; reason: unknown }[] = [];
  const finish = new Map<string, () => void>();
  // Runs until the test finishes it, or until its signal aborts.
  const t = app.task('long', { input: z.object({}) }, (_, ctx) => {
    const signal = ctx.signal;
    return new Promise<string>((resolve, reject) => {
      finish.set(ctx.id, () => resolve('done'));
      signal.addEventListener('abort', () => {
        aborts.push({ id: ctx.id, at: Date.now(), reason: signal.reason });
        reject(signal.reason as Error);
      });
    });
  });
  const conn = await app.connection();
  const executor = new Executor(app, conn, 4, LEASE, () => {});
  const keeper = new LeaseKeeper(app, conn, executor, LEASE);
  const take = async (): Promise<Delivery> => {
    const [d] = await real.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 });
    if (!d) throw new Error('nothing to fetch');
    return d;
  };
  /** Lets the handler's admission steps (key claim and the like) go through on the fake clock. */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
  };
  return { app, real, broker, store, queue, t, executor, keeper, aborts, take, warnings, finish, settle };
}

describe('LeaseKeeper (mutation-tested guarantees)', () => {
  it('keeps a keyed task that runs for many leases: its lease and its key stay held, nothing aborts', async () => {
    vi.useFakeTimers(FAKE);
    const { real, queue, t, executor, keeper, aborts, take, finish, settle, store } = await setup();
    const h = await t.enqueue({}, { idempotencyKey: 'invoice-7' });
    executor.run(await take(), Date.now());
    await settle();
    keeper.start();
    await vi.advanceTimersByTimeAsync(5 * LEASE);
    expect(aborts).toEqual([]);
    expect(store.state.calls).toBeGreaterThanOrEqual(1 + 14); // the claim, then ~one renewal a second
    // Nobody else can take the message, nor the key.
    expect(await real.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 })).toEqual([]);
    expect((await store.target.claimKey({ queue, key: 'invoice-7' }, 'someone-else', LEASE)).status).toBe('busy');
    finish.get(h.id)!();
    expect(await executor.waitIdle(10_000)).toBe(true);
    keeper.stop();
  });

  it('aborts at the next tick an attempt whose key claim went to another delivery', async () => {
    vi.useFakeTimers(FAKE);
    const { queue, t, executor, keeper, aborts, take, settle, store, warnings } = await setup();
    await t.enqueue({}, { idempotencyKey: 'invoice-8' });
    const d = await take();
    const t0 = Date.now();
    executor.run(d, t0);
    await settle();
    keeper.start();
    // The claim is taken over behind the worker's back (as after a partition that outlived it).
    await store.target.releaseKey({ queue, key: 'invoice-8' }, d.token);
    expect((await store.target.claimKey({ queue, key: 'invoice-8' }, 'other-delivery', 60_000)).status).toBe('acquired');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(aborts).toEqual([{ id: d.message.id, at: t0 + 1_000, reason: expect.any(LeaseLostError) }]);
    expect(warnings.map((w) => w.msg)).toContain('idempotency key claim taken over by another delivery; aborting this attempt');
    keeper.stop();
  });

  it('gives up each attempt at its own deadline, telling the operator why', async () => {
    vi.useFakeTimers(FAKE);
    const { broker, t, executor, keeper, aborts, take, warnings } = await setup();
    const [a, b] = await t.enqueueMany([{ payload: {} }, { payload: {} }]);
    const t0 = Date.now();
    broker.state.stalled = true; // no renewal is ever confirmed
    executor.run(await take(), t0);
    keeper.start(); // ticks at +1 s, +2 s, +3 s
    await vi.advanceTimersByTimeAsync(600);
    executor.run(await take(), t0 + 600); // fetched 600 ms later: its lease ends 600 ms later
    await vi.advanceTimersByTimeAsync(LEASE - 500 - 600 - 1);
    expect(aborts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborts).toEqual([{ id: a!.id, at: t0 + 2_500, reason: expect.any(LeaseLostError) }]);
    await vi.advanceTimersByTimeAsync(599);
    expect(aborts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborts.map((x) => [x.id, x.at])).toEqual([
      [a!.id, t0 + 2_500],
      [b!.id, t0 + 3_100],
    ]);
    expect(warnings.filter((w) => w.msg === 'lease not confirmed since 2500 ms; aborting this attempt before it lapses').map((w) => w.fields)).toEqual([{ taskId: a!.id }, { taskId: b!.id }]);
    keeper.stop();
  });

  it("gives up a keyed attempt whose key claim the store stops confirming, saying which claim", async () => {
    vi.useFakeTimers(FAKE);
    const { t, executor, keeper, aborts, take, store, settle, warnings } = await setup();
    await t.enqueue({}, { idempotencyKey: 'invoice-9' });
    const t0 = Date.now();
    executor.run(await take(), t0);
    await settle(); // key claimed at t0: valid until t0 + 3 s
    store.state.stalled = true;
    keeper.start();
    await vi.advanceTimersByTimeAsync(2_499);
    expect(aborts).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(aborts.map((x) => x.at)).toEqual([t0 + 2_500]);
    expect(warnings.map((w) => w.msg)).toContain('idempotency key claim not confirmed since 2500 ms; aborting this attempt before it lapses');
    expect(warnings.map((w) => w.msg)).toContain('claim renewal did not answer in time; the next tick tries again');
    keeper.stop();
  });

  it('reports a renewal that did not answer within its round (900 ms), and not one that did', async () => {
    vi.useFakeTimers(FAKE);
    const { broker, t, executor, keeper, take, warnings } = await setup();
    await t.enqueue({});
    executor.run(await take(), Date.now());
    keeper.start();
    await vi.advanceTimersByTimeAsync(1_000); // an answered round
    expect(warnings).toEqual([]);
    broker.state.stalled = true;
    await vi.advanceTimersByTimeAsync(1_000 + 899); // the round sent at +2 s does not answer
    expect(warnings).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(warnings).toEqual([{ fields: { afterMs: 900 }, msg: 'lease renewal did not answer in time; the next tick tries again' }]);
    keeper.stop();
  });

  it('reports a renewal the broker refused with an error, and tries again at the next tick', async () => {
    vi.useFakeTimers(FAKE);
    const { real, t, executor, keeper, take, warnings, aborts } = await setup();
    await t.enqueue({});
    executor.run(await take(), Date.now());
    const renew = vi.spyOn(real, 'renew').mockRejectedValueOnce(new Error('connection reset'));
    keeper.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(warnings).toEqual([{ fields: { err: 'Error: connection reset' }, msg: 'lease renewal failed; retrying on the next tick' }]);
    await vi.advanceTimersByTimeAsync(5 * LEASE);
    expect(renew.mock.calls.length).toBeGreaterThanOrEqual(15);
    expect(aborts).toEqual([]); // the later renewals held the lease
    keeper.stop();
  });

  it('sends one renewal at a time per chain: a tick while a round is out sends nothing more', async () => {
    vi.useFakeTimers(FAKE);
    const { broker, store, t, executor, keeper, take, settle } = await setup();
    await t.enqueue({}, { idempotencyKey: 'k' });
    executor.run(await take(), Date.now());
    await settle();
    const [brokerCalls, storeCalls] = [broker.state.calls, store.state.calls];
    broker.state.stalled = true;
    store.state.stalled = true;
    void keeper.renewNow();
    void keeper.renewNow();
    await vi.advanceTimersByTimeAsync(0);
    expect([broker.state.calls - brokerCalls, store.state.calls - storeCalls]).toEqual([1, 1]);
    keeper.stop();
  });

  it('is quiet once stopped, and sets no timer of its own while nothing runs', async () => {
    vi.useFakeTimers(FAKE);
    const { broker, t, executor, keeper, take, aborts } = await setup();
    keeper.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(vi.getTimerCount()).toBe(1); // its interval, no watchdog spinning on nothing
    expect(broker.state.calls).toBe(0); // and no renewal call with nothing to renew
    await t.enqueue({});
    executor.run(await take(), Date.now());
    await vi.advanceTimersByTimeAsync(1_000);
    const calls = broker.state.calls;
    expect(calls).toBeGreaterThan(0);
    keeper.stop();
    broker.state.stalled = true;
    await vi.advanceTimersByTimeAsync(3 * LEASE);
    expect(broker.state.calls).toBe(calls); // no renewal after stop()
    expect(aborts).toEqual([]); // nor a watchdog left behind
  });

  it('tells the operator when a lease went to another consumer', async () => {
    vi.useFakeTimers(FAKE);
    const { real, queue, t, executor, keeper, take, warnings, aborts, settle } = await setup();
    await t.enqueue({});
    const d = await take();
    executor.run(d, Date.now());
    await settle();
    await d.release(); // the message goes back behind the worker's back…
    await real.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 }); // …and another consumer holds it
    await keeper.renewNow();
    expect(aborts.map((a) => a.id)).toEqual([d.message.id]);
    expect(warnings).toEqual([{ fields: { taskId: d.message.id }, msg: 'lease lost while running (the message went to another consumer); aborting this attempt' }]);
  });

  it('reports a key claim renewal the store refused with an error, and keeps the claim through the next one', async () => {
    vi.useFakeTimers(FAKE);
    const { store, t, executor, keeper, take, warnings, aborts, settle } = await setup();
    const h = await t.enqueue({}, { idempotencyKey: 'k-err' });
    executor.run(await take(), Date.now());
    await settle();
    const claimKey = store.target.claimKey.bind(store.target);
    let failOnce = true;
    const spy = vi.spyOn(store.target, 'claimKey').mockImplementation((...args) => {
      if (failOnce) {
        failOnce = false;
        return Promise.reject(new Error('store connection reset'));
      }
      return claimKey(...args);
    });
    keeper.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(warnings).toEqual([{ fields: { taskId: h.id, err: 'Error: store connection reset' }, msg: 'idempotency key claim renewal failed; retrying on the next tick' }]);
    await vi.advanceTimersByTimeAsync(3 * LEASE);
    expect(aborts).toEqual([]);
    spy.mockRestore();
    keeper.stop();
  });

  it('gives up each keyed attempt at its own claim deadline', async () => {
    vi.useFakeTimers(FAKE);
    const { t, executor, keeper, aborts, take, store, settle } = await setup();
    const a = await t.enqueue({}, { idempotencyKey: 'first' });
    const t0 = Date.now();
    executor.run(await take(), t0);
    await settle(); // claimed at t0
    await vi.advanceTimersByTimeAsync(600);
    const b = await t.enqueue({}, { idempotencyKey: 'second' });
    executor.run(await take(), t0 + 600);
    await settle(); // claimed at t0 + 600
    store.state.stalled = true;
    await vi.advanceTimersByTimeAsync(100);
    keeper.start(); // at +700: ticks at +1.7 s and +2.7 s, away from the deadlines at +2.5 s and +3.1 s
    await vi.advanceTimersByTimeAsync(2_500 - 700);
    expect(aborts.map((x) => [x.id, x.at - t0])).toEqual([[a.id, 2_500]]);
    await vi.advanceTimersByTimeAsync(600);
    expect(aborts.map((x) => [x.id, x.at - t0])).toEqual([
      [a.id, 2_500],
      [b.id, 3_100],
    ]);
    keeper.stop();
  });

  it('keeps the key of a handler that ignored its time limit while it could still be running, then lets it lapse (bounded)', async () => {
    vi.useFakeTimers(FAKE);
    const { app, queue, executor, keeper, take, store, settle, real } = await setup();
    let release!: () => void;
    const stubborn = app.task('stubborn', { input: z.object({}), timeoutMs: 100, retry: { delayMs: 60_000, jitter: false } }, () => new Promise<void>((resolve) => (release = resolve)));
    await stubborn.enqueue({}, { idempotencyKey: 'slow-key' });
    executor.run(await take(), Date.now());
    await settle();
    keeper.start();
    await vi.advanceTimersByTimeAsync(200); // past its time limit: settled (a retry is scheduled)…
    expect(await real.stats(queue)).toMatchObject({ inFlight: 0, delayed: 1 });
    expect(executor.running).toBe(1); // …but the handler still runs
    await vi.advanceTimersByTimeAsync(LEASE / 2);
    expect((await store.target.claimKey({ queue, key: 'slow-key' }, 'the-retry', LEASE)).status).toBe('busy');
    // Renewed for a lease more (its timeoutMs is shorter), then left to lapse with its lease.
    await vi.advanceTimersByTimeAsync(3 * LEASE);
    expect((await store.target.claimKey({ queue, key: 'slow-key' }, 'the-retry', LEASE)).status).toBe('acquired');
    release();
    await settle();
    expect(executor.running).toBe(0);
    keeper.stop();
  });
});
