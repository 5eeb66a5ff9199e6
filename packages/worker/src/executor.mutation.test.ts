import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, LeaseLostError, MemoryBroker, type App, type Delivery, type Logger } from '@celeriac/core';
import { gate, uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';

// What the executor promises the worker: slots held while a handler really runs, waits that end,
// settlement failures that do not take the worker down.
const LEASE = 30_000;
const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function setup(concurrency = 1) {
  const broker = new MemoryBroker();
  const queue = uniqueQueue('exm');
  const errors: { fields: object; msg: string }[] = [];
  const noop = () => {};
  const logger: Logger = { debug: noop, info: noop, warn: noop, error: (fields, msg) => void errors.push({ fields: fields as object, msg: msg ?? '' }) };
  const app = createApp({ broker, defaultQueue: queue, logger });
  apps.push(app);
  const executor = new Executor(app, await app.connection(), concurrency, LEASE, () => {});
  const take = async (n = 1): Promise<Delivery[]> => broker.fetch({ queues: [queue], max: n, leaseMs: LEASE, waitMs: 0 });
  return { app, broker, queue, executor, take, errors };
}

describe('Executor', () => {
  it('keeps the slot of a handler that outlived its time limit until it really ends', async () => {
    const { app, broker, queue, executor, take } = await setup(1);
    const stubborn = gate();
    let ended = false;
    const t = app.task('stubborn', { input: z.object({}), timeoutMs: 20, retry: { maxAttempts: 3, delayMs: 60_000, jitter: false } }, async () => {
      await stubborn.opened; // ignores ctx.signal
      ended = true;
    });
    await t.enqueue({});
    const [d] = await take();
    executor.run(d!);
    const slot = executor.waitForSlot(new AbortController().signal); // the fetcher waits for a slot
    let free = false;
    void slot.then(() => (free = true));
    expect(await executor.waitIdle(5_000)).toBe(true); // settled: retried after its time limit…
    expect(await broker.stats(queue)).toMatchObject({ delayed: 1, inFlight: 0 });
    expect([executor.running, executor.free]).toEqual([1, 0]); // …but the handler still runs in its slot
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(free).toBe(false); // so the fetcher is not woken
    stubborn.open();
    await slot;
    expect([ended, executor.running, executor.free]).toEqual([true, 0, 1]);
  });

  it('waitIdle answers false after its timeout while a delivery is still unsettled', async () => {
    const { app, executor, take } = await setup(1);
    const g = gate();
    const t = app.task('slow', { input: z.object({}) }, () => g.opened);
    await t.enqueue({});
    executor.run((await take())[0]!);
    expect(await executor.waitIdle(30)).toBe(false);
    g.open();
    expect(await executor.waitIdle(5_000)).toBe(true);
    expect(await executor.waitIdle(0)).toBe(true);
  });

  it('waitForSlot resolves at once when its signal aborts, and a later free slot goes to the next waiter', async () => {
    const { app, executor, take } = await setup(1);
    const g = gate();
    const t = app.task('slow', { input: z.object({}) }, () => g.opened);
    await t.enqueue({});
    executor.run((await take())[0]!);
    const stop = new AbortController();
    const first = executor.waitForSlot(stop.signal);
    let secondWoken = false;
    const second = executor.waitForSlot(new AbortController().signal).then(() => (secondWoken = true));
    stop.abort();
    await first; // resolves although no slot is free
    expect(executor.free).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(secondWoken).toBe(false);
    g.open();
    await second; // the aborted waiter is gone: the free slot wakes this one
    expect(secondWoken).toBe(true);
    expect(await executor.waitForSlot(stop.signal).then(() => 'at once')).toBe('at once');
  });

  it('survives a settlement the broker refuses: the worker goes on, the message is redelivered later', async () => {
    const { app, broker, queue, executor, take, errors } = await setup(1);
    const t = app.task('quick', { input: z.object({}) }, () => 'done');
    await t.enqueue({});
    const [d] = await take();
    const failing: Delivery = { ...d!, message: d!.message, token: d!.token, lapses: d!.lapses, ack: () => Promise.reject(new Error('connection reset')), retry: d!.retry.bind(d), deadLetter: d!.deadLetter.bind(d), release: d!.release.bind(d) };
    executor.run(failing);
    expect(await executor.waitIdle(5_000)).toBe(true);
    expect([executor.running, executor.free]).toEqual([0, 1]);
    expect(await broker.stats(queue)).toMatchObject({ inFlight: 1, completed: 0 }); // still leased: it lapses and comes back
    expect(errors).toEqual([{ fields: { taskId: d!.message.id, err: 'Error: connection reset' }, msg: 'could not settle task; it will be redelivered when its lease lapses' }]);
  });

  it('abortAll aborts every running attempt (a hard stop): their messages go back unsettled', async () => {
    const { app, broker, queue, executor, take } = await setup(2);
    const seen: unknown[] = [];
    const t = app.task('waits', { input: z.object({}) }, (_, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => {
      seen.push(ctx.signal.reason);
      reject(ctx.signal.reason as Error);
    })));
    await t.enqueueMany([{ payload: {} }, { payload: {} }]);
    for (const d of await take(2)) executor.run(d);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stop = new Error('worker stopping now');
    executor.abortAll(stop);
    expect(await executor.waitIdle(5_000)).toBe(true);
    expect(seen).toEqual([stop, stop]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 2, inFlight: 0, failed: 0 });
  });

  it('waitIdle waits for every unsettled delivery, not just the first to settle', async () => {
    const { app, executor, take } = await setup(2);
    const gates = [gate(), gate()];
    let n = 0;
    const t = app.task('slow', { input: z.object({}) }, () => gates[n++]!.opened);
    await t.enqueueMany([{ payload: {} }, { payload: {} }]);
    for (const d of await take(2)) executor.run(d);
    await new Promise((resolve) => setTimeout(resolve, 20));
    let idle: boolean | undefined;
    void executor.waitIdle(10_000).then((v) => (idle = v));
    gates[0]!.open();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(idle).toBeUndefined();
    gates[1]!.open();
    await expect.poll(() => idle).toBe(true);
  });

  it('takes an abort that comes after its delivery settled (a late lease verdict) in its stride', async () => {
    const { app, executor, take } = await setup(1);
    const t = app.task('quick', { input: z.object({}) }, () => 'done');
    await t.enqueue({});
    const [d] = await take();
    executor.run(d!);
    expect(await executor.waitIdle(5_000)).toBe(true);
    expect(() => executor.abort(d!, new LeaseLostError(d!.message.id))).not.toThrow();
    expect([executor.running, executor.free]).toEqual([0, 1]);
  });

  it("leaves no listener on the fetcher's long-lived stop signal once a slot frees", async () => {
    const { app, executor, take } = await setup(1);
    const t = app.task('quick', { input: z.object({}) }, () => new Promise((resolve) => setTimeout(resolve, 1)));
    const stop = new AbortController();
    for (let i = 0; i < 20; i++) {
      await t.enqueue({});
      executor.run((await take())[0]!);
      await executor.waitForSlot(stop.signal);
    }
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    expect(await executor.waitIdle(5_000)).toBe(true);
  });
});
