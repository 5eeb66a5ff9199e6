import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, LeaseLostError, MemoryBroker, type App, type Delivery } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Executor, SUSPECT_LAPSES } from './executor.js';

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

/** The same delivery, presented as one whose earlier deliveries died unsettled (`lapses` times). */
const suspectOf = (d: Delivery, lapses = SUSPECT_LAPSES): Delivery => ({
  message: d.message,
  token: d.token,
  lapses,
  ack: (s) => d.ack(s),
  retry: (next, at) => d.retry(next, at),
  deadLetter: (reason, s) => d.deadLetter(reason, s),
  release: (at) => d.release(at),
});

describe('Executor: a suspect runs alone', () => {
  async function setup(leaseMs: number) {
    const broker = new MemoryBroker();
    const queue = uniqueQueue('sus');
    const app = createApp({ broker, defaultQueue: queue });
    apps.push(app);
    const gates = new Map<string, () => void>();
    const started: string[] = [];
    const t = app.task('gated', { input: z.object({ name: z.string() }) }, ({ name }) => {
      started.push(name);
      return new Promise<string>((resolve) => gates.set(name, () => resolve(name)));
    });
    const executor = new Executor(app, await app.connection(), 3, leaseMs, () => {});
    const take = async (name: string, suspect: boolean | number = false) => {
      await t.enqueue({ name });
      // The broker lease outlives the test (no lease keeper here); the executor's leaseMs bounds the suspect.
      const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 0 });
      executor.run(suspect === false ? d! : suspectOf(d!, suspect === true ? SUSPECT_LAPSES : suspect));
    };
    return { executor, take, started, open: (name: string) => gates.get(name)!(), broker, queue };
  }

  it('waits until the others end, starts nothing beside it, then lets the others run again', async () => {
    const { executor, take, started, open } = await setup(30_000);
    await take('a');
    await take('b');
    await take('poison', true);
    await expect.poll(() => started).toEqual(['a', 'b']);
    expect(executor.free).toBe(0); // no fetch while a suspect waits: nothing new would start anyway
    open('a');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(started).toEqual(['a', 'b']); // b still runs: the suspect still waits
    open('b');
    await expect.poll(() => started).toEqual(['a', 'b', 'poison']);
    expect(executor.free).toBe(0); // alone while it runs
    open('poison');
    await expect.poll(() => executor.free).toBe(3);
    expect(await executor.waitIdle(1_000)).toBe(true);
  });

  it('waits for the others at most leaseMs, so one long task cannot stall the worker', async () => {
    const { executor, take, started, open } = await setup(200);
    await take('long');
    await take('poison', true);
    await expect.poll(() => started, { timeout: 2_000 }).toEqual(['long', 'poison']);
    open('poison');
    open('long');
    expect(await executor.waitIdle(2_000)).toBe(true);
  });

  it('runs alone for at most leaseMs, then lets other work start beside a long suspect', async () => {
    const { executor, take, started, open } = await setup(200);
    await take('slow-suspect', true);
    await expect.poll(() => started).toEqual(['slow-suspect']);
    expect(executor.free).toBe(0);
    await expect.poll(() => executor.free, { timeout: 2_000 }).toBe(2); // its solitude ended; it still holds its slot
    await take('next');
    await expect.poll(() => started).toEqual(['slow-suspect', 'next']);
    open('next');
    open('slow-suspect');
    expect(await executor.waitIdle(2_000)).toBe(true);
  });

  it('runs a task that died only once with the others (a bystander of a SIGKILL is no suspect)', async () => {
    const { executor, take, started, open } = await setup(30_000);
    await take('a');
    await take('once-lapsed', SUSPECT_LAPSES - 1);
    await expect.poll(() => started).toEqual(['a', 'once-lapsed']);
    expect(executor.free).toBe(1);
    open('a');
    open('once-lapsed');
    expect(await executor.waitIdle(1_000)).toBe(true);
  });

  it('holds one suspect at a time: a second is given back unstarted, with no lapse, for another worker', async () => {
    const { executor, take, started, open, broker, queue } = await setup(30_000);
    await take('first', true);
    await expect.poll(() => started).toEqual(['first']);
    await take('second', true);
    await expect.poll(async () => (await broker.stats(queue)).ready).toBe(1); // back on the queue
    expect(started).toEqual(['first']);
    const [again] = await broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 0 });
    expect(again!.lapses).toBe(0); // released, not lapsed (the wrapper's lapses were the test's)
    await again!.release();
    open('first');
    expect(await executor.waitIdle(1_000)).toBe(true);
  });

  it('forgets a waiting suspect that lost its lease: the next one still waits for the others', async () => {
    const { executor, take, started, open } = await setup(30_000);
    await take('a');
    await take('s1', true);
    const [s1] = executor.unsettled().map(([d]) => d).filter((d) => d.lapses >= SUSPECT_LAPSES);
    executor.abort(s1!, new LeaseLostError(s1!.message.id));
    await take('s2', true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(started).toEqual(['a']); // s2 waits for a (a lost s1 is no handler that outlived its attempt)
    open('a');
    await expect.poll(() => started).toEqual(['a', 's2']);
    open('s2');
    expect(await executor.waitIdle(1_000)).toBe(true);
  });

  it('gives back a second suspect while the first still waits its turn', async () => {
    const { executor, take, started, open, broker, queue } = await setup(30_000);
    await take('a');
    await take('s1', true);
    await take('s2', true);
    await expect.poll(async () => (await broker.stats(queue)).ready).toBe(1); // s2, back on the queue
    expect(started).toEqual(['a']);
    open('a');
    await expect.poll(() => started).toEqual(['a', 's1']);
    open('s1');
    expect(await executor.waitIdle(1_000)).toBe(true);
  });
});

describe('Executor: a handler that ignored its time limit', () => {
  it('keeps its claims for its timeoutMs more (at least a lease), then drops them with one warning; a suspect does not wait for it', async () => {
    const broker = new MemoryBroker();
    const queue = uniqueQueue('ab');
    const warnings: { at: number; msg: string }[] = [];
    const logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (_o: object | string, msg?: string) => void warnings.push({ at: Date.now(), msg: String(msg) }) };
    const app = createApp({ broker, defaultQueue: queue, logger });
    apps.push(app);
    const started: string[] = [];
    // Its time limit schedules a retry (far off): the key stays claimed while the handler runs on.
    const t = app.task('stubborn', { input: z.object({ name: z.string() }), timeoutMs: 100, retry: { maxAttempts: 5, delayMs: 60_000, jitter: false } }, ({ name }) => {
      started.push(name);
      return new Promise<never>(() => {}); // ignores its signal, never ends
    });
    // Longer than its timeoutMs: the claims are kept for the lease. Long against the checks' own
    // delays too: with 300 ms, a poll and a 150 ms sleep stretched by a loaded machine came after it.
    const lease = 1_000;
    const executor = new Executor(app, await app.connection(), 3, lease, () => {});
    const take = async () => (await broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 }))[0]!;
    await t.enqueue({ name: 'stubborn' }, { idempotencyKey: 'k1' });
    const d = await take();
    const ranAt = Date.now();
    executor.run(d);
    await expect.poll(() => executor.unsettled().length, { timeout: 2_000 }).toBe(0); // retried at its time limit…
    expect(executor.running).toBe(1); // …but still runs, holding its key
    expect(executor.claimHolders().map(([x]) => x.message.id)).toEqual([d.message.id]);
    await new Promise((resolve) => setTimeout(resolve, 150)); // its timeoutMs more has passed, not its lease
    expect(executor.claimHolders()).toHaveLength(1);
    await expect.poll(() => executor.claimHolders(), { timeout: 5_000 }).toEqual([]); // its lease has passed too
    expect(executor.claimHolders()).toEqual([]);
    const dropped = warnings.filter((w) => /no longer renewed/.test(w.msg));
    expect(dropped).toHaveLength(1);
    // Dropped a lease after its time limit at the soonest, whatever the machine's load (a drop
    // after only its timeoutMs more would come some 200 ms after the start).
    expect(dropped[0]!.at - ranAt).toBeGreaterThanOrEqual(lease);
    await t.enqueue({ name: 'suspect' });
    executor.run(suspectOf(await take()));
    await expect.poll(() => started).toEqual(['stubborn', 'suspect']); // did not wait for the settled one
  });
});
