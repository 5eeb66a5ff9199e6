import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { Attempt } from './attempt.js';
import type { Delivery } from './broker.js';
import { runDelivery, type RunOutcome } from './execution.js';
import { MemoryBroker } from './memory/broker.js';
import { MemoryResultBackend } from './memory/results.js';
import { gate, makeMessage, sleep, uniqueQueue } from './testing/messages.js';

const LEASE = 30_000;
const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** An app on a memory broker; with `storeApart`, results go to a store of their own (as RabbitMQ + Redis). */
function setup(options: { storeApart?: boolean; resultTtlMs?: number; idempotencyTtlMs?: number } = {}) {
  const broker = new MemoryBroker();
  const store = options.storeApart ? new MemoryResultBackend() : broker.results;
  const queue = uniqueQueue('ex');
  const ttls = { ...(options.resultTtlMs ? { resultTtlMs: options.resultTtlMs } : {}), ...(options.idempotencyTtlMs ? { idempotencyTtlMs: options.idempotencyTtlMs } : {}) };
  const app = createApp({ broker, results: store, defaultQueue: queue, ...ttls });
  apps.push(app);
  return { app, broker, store, queue };
}

async function fetchOne(broker: MemoryBroker, queue: string, leaseMs = LEASE): Promise<Delivery> {
  const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs, waitMs: 2_000 });
  if (!d) throw new Error(`nothing to fetch on ${queue}`);
  return d;
}

function run(app: App, d: Delivery, leaseMs = LEASE): Promise<RunOutcome> {
  return app.connection().then((conn) => runDelivery(app, conn, d, { attempt: new Attempt(), leaseMs }));
}

/** A delivery as a backend hands it over after `lapses` earlier deliveries died unsettled (settling the real one). */
function lapsed(d: Delivery, lapses: number, message = d.message): Delivery {
  return {
    message,
    token: d.token,
    lapses,
    ack: (s) => d.ack(s),
    retry: (next, at) => d.retry(next, at),
    deadLetter: (reason, s) => d.deadLetter(reason, s),
    release: (at) => d.release(at),
  };
}

describe('deliveries that died unsettled count as attempts (attemptOf)', () => {
  it('dead-letters a task whose deliveries kept dying, with a reason that says so, without running it', async () => {
    const { app, broker, queue } = setup();
    let runs = 0;
    const t = app.task('crasher', { input: z.object({}), retry: { maxAttempts: 3 } }, () => ++runs);
    const handle = await t.enqueue({});
    const outcome = await run(app, lapsed(await fetchOne(broker, queue), 3));
    expect(outcome).toBe('failed');
    expect(runs).toBe(0);
    const [dead] = await broker.deadLetters(queue);
    expect(dead!.reason).toBe(
      'delivered 3 time(s) and each delivery died before settling (its worker crashed, hung or lost its lease); that spends its 3 attempt(s)',
    );
    await expect(handle.result({ timeoutMs: 100 })).rejects.toMatchObject({ state: 'failed', error: { name: 'TaskLapsedError' } });
    expect(await broker.results.get(handle)).toMatchObject({ state: 'failed', attempts: 4 });
  });

  it('gives the handler attemptOf as ctx.attempt, and retries as the attempt after it', async () => {
    const { app, broker, queue } = setup();
    const seen: number[] = [];
    const t = app.task('flaky', { input: z.object({}), retry: { maxAttempts: 4, delayMs: 0, jitter: false } }, (_, ctx) => {
      seen.push(ctx.attempt);
      throw new Error(`boom ${ctx.attempt}`);
    });
    await t.enqueue({});
    expect(await run(app, lapsed(await fetchOne(broker, queue), 1))).toBe('retrying');
    const again = await fetchOne(broker, queue);
    expect(again.message).toMatchObject({ attempt: 3, lastError: { message: 'boom 2' } });
    expect(await run(app, lapsed(again, 1))).toBe('failed');
    expect(seen).toEqual([2, 4]);
    expect((await broker.deadLetters(queue))[0]!.reason).toBe('failed after 4 attempt(s): boom 4');
  });

  it('counts earlier failed attempts in the reason', async () => {
    const { app, broker, queue } = setup();
    app.task('crasher', { input: z.object({}), retry: { maxAttempts: 2 } }, () => 1);
    await broker.publish([makeMessage(queue, { task: 'crasher', payload: {}, attempt: 2, maxAttempts: 2 })], { keyTtlMs: LEASE });
    expect(await run(app, lapsed(await fetchOne(broker, queue), 1))).toBe('failed');
    expect((await broker.deadLetters(queue))[0]!.reason).toMatch(/^failed 1 attempt\(s\), then was delivered 1 time\(s\) and each delivery died before settling/);
  });
});

describe('a message past its attempts', () => {
  it('is dead-lettered with a reason, not run, even with no lapses (made elsewhere)', async () => {
    const { app, broker, queue } = setup();
    let runs = 0;
    app.task('t', { input: z.object({}) }, () => ++runs);
    await broker.publish([makeMessage(queue, { task: 't', payload: {}, attempt: 4, maxAttempts: 3 })], { keyTtlMs: LEASE });
    expect(await run(app, await fetchOne(broker, queue))).toBe('failed');
    expect(runs).toBe(0);
    expect((await broker.deadLetters(queue))[0]!.reason).toBe('attempt 4 is past maxAttempts 3: no attempt left to run');
  });
});

describe('a stale owner never stores its outcome where the store is apart from the broker', () => {
  /** Two deliveries of one task: A's lease lapses while its handler runs, B takes the message over. */
  async function overlap(first: () => Promise<string>, second: () => Promise<string>) {
    const { app, broker, store, queue } = setup({ storeApart: true });
    const bodies = [first, second];
    const started: number[] = [];
    // B's delivery follows a lapse, which spends A's attempt: B runs as attempt 2 of 2.
    const t = app.task('pay', { input: z.object({}), retry: { maxAttempts: 2 } }, () => {
      started.push(started.length);
      return bodies[started.length - 1]!();
    });
    const handle = await t.enqueue({});
    const a = await fetchOne(broker, queue, 50);
    const runA = run(app, a, 50);
    await sleep(120); // A's broker lease and its task claim lapse (nobody renews them here)
    const runB = run(app, await fetchOne(broker, queue));
    return { store, handle, runA, runB, started };
  }

  it("the old owner's failure is not stored before the new owner's success", async () => {
    const a = gate();
    const b = gate();
    const { store, handle, runA, runB, started } = await overlap(
      async () => {
        await a.opened;
        throw new Error('stale failure');
      },
      async () => {
        await b.opened;
        return 'fresh';
      },
    );
    await sleep(20);
    expect(started).toEqual([0, 1]);
    a.open();
    expect(await runA).toBe('lost');
    expect(await store.get(handle)).toBeNull();
    b.open();
    expect(await runB).toBe('succeeded');
    expect(await handle.result({ timeoutMs: 1_000 })).toBe('fresh');
  });

  it("the old owner's late success does not replace the new owner's outcome", async () => {
    const a = gate();
    const { store, handle, runA, runB } = await overlap(
      async () => {
        await a.opened;
        return 'stale';
      },
      async () => {
        throw new Error('fresh failure');
      },
    );
    expect(await runB).toBe('failed');
    a.open();
    expect(await runA).toBe('lost');
    expect(await store.get(handle)).toMatchObject({ state: 'failed', error: { message: 'fresh failure' } });
  });

  it('gives the message back at once when its claim lapsed though nobody took it over (no lapse counted)', async () => {
    const { app, broker, store, queue } = setup({ storeApart: true });
    const t = app.task('slow', { input: z.object({}) }, async () => {
      await sleep(120); // outlives its 50 ms task claim, which nobody renews here
      return 'late';
    });
    const handle = await t.enqueue({});
    expect(await run(app, await fetchOne(broker, queue), 50)).toBe('lost');
    expect(await store.get(handle)).toBeNull();
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, inFlight: 0 });
  });

  it('acks a delivery of a task that already has a final record without running it (a resent publish)', async () => {
    const { app, broker, store, queue } = setup({ storeApart: true });
    let runs = 0;
    const t = app.task('once', { input: z.object({}) }, () => ++runs);
    const handle = await t.enqueue({});
    const record = { id: handle.id, queue, task: 'once', state: 'succeeded' as const, value: 41, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await store.store({ record, ttlMs: LEASE, keyTtlMs: LEASE });
    expect(await run(app, await fetchOne(broker, queue))).toBe('duplicate');
    expect(runs).toBe(0);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, delayed: 0, inFlight: 0 });
  });

  it('gives a delivery whose task is claimed elsewhere back with a delay, not at once', async () => {
    const { app, broker, store, queue } = setup({ storeApart: true });
    let runs = 0;
    const t = app.task('held', { input: z.object({}) }, () => ++runs);
    const handle = await t.enqueue({});
    expect(await store.claimTask(handle, 'another-owner', LEASE)).toEqual({ status: 'acquired' });
    expect(await run(app, await fetchOne(broker, queue))).toBe('yielded');
    expect(runs).toBe(0);
    expect(await broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 200 })).toEqual([]);
    expect(await handle.state()).toBe('scheduled');
  });

  it('releases its task claim before a retry, so the retry runs at once', async () => {
    const { app, broker, queue } = setup({ storeApart: true });
    const t = app.task('again', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 0, jitter: false } }, (_, ctx) => {
      if (ctx.attempt === 1) throw new Error('first');
      return ctx.attempt;
    });
    const handle = await t.enqueue({});
    expect(await run(app, await fetchOne(broker, queue))).toBe('retrying');
    expect(await run(app, await fetchOne(broker, queue))).toBe('succeeded');
    expect(await handle.result({ timeoutMs: 1_000 })).toBe(2);
  });
});

describe('execution rules a mutant would break', () => {
  it('runs a task whose expiresAt is still ahead', async () => {
    const { app, broker, queue } = setup();
    const t = app.task('soon', { input: z.object({}) }, () => 'ran');
    const handle = await t.enqueue({}, { expiresInMs: 60_000 });
    expect(await run(app, await fetchOne(broker, queue))).toBe('succeeded');
    expect(await handle.result({ timeoutMs: 1_000 })).toBe('ran');
  });

  it('does not offer a key-busy delivery again at once', async () => {
    const { app, broker, queue } = setup();
    const t = app.task('keyed', { input: z.object({}) }, () => 1);
    const handle = await t.enqueue({}, { idempotencyKey: 'k1' });
    await broker.results.claimKey({ queue, key: 'k1' }, 'someone-else', LEASE);
    expect(await run(app, await fetchOne(broker, queue))).toBe('yielded');
    expect(await handle.state()).toBe('scheduled');
    expect(await broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 300 })).toEqual([]);
  });

  it('a later failure under a key does not overwrite its stored success', async () => {
    const { app, broker, queue } = setup();
    let runs = 0;
    const t = app.task('charge', { input: z.object({}), retry: { maxAttempts: 1 } }, () => {
      if (++runs > 1) throw new Error('second charge fails');
      return 'charged';
    });
    const first = await t.enqueue({}, { idempotencyKey: 'order-1' });
    expect(await run(app, await fetchOne(broker, queue))).toBe('succeeded');
    // A second task with the same key got past publish (as with per-process dedup): it must reuse the success.
    await t.enqueue({}, { idempotencyKey: 'another' });
    const delivered = await fetchOne(broker, queue);
    const second = { ...delivered.message, idempotencyKey: 'order-1' };
    expect(await run(app, lapsed(delivered, 0, second))).toBe('duplicate');
    expect(runs).toBe(1);
    expect(await first.result({ timeoutMs: 100 })).toBe('charged');
    expect(await broker.results.get(second)).toMatchObject({ state: 'succeeded', value: 'charged' });
    expect(await broker.results.claimKey({ queue, key: 'order-1' }, 'probe', LEASE)).toMatchObject({ status: 'done', record: { value: 'charged' } });
  });

  it('dead letters keep their error', async () => {
    const { app, broker, queue } = setup();
    const t = app.task('bad', { input: z.object({}), retry: { maxAttempts: 1 } }, () => {
      throw new TypeError('the real cause');
    });
    const handle = await t.enqueue({});
    expect(await run(app, await fetchOne(broker, queue))).toBe('failed');
    const [dead] = await broker.deadLetters(queue);
    expect(dead).toMatchObject({ reason: 'failed after 1 attempt(s): the real cause', error: { name: 'TypeError', message: 'the real cause' } });
    await expect(handle.result({ timeoutMs: 100 })).rejects.toMatchObject({ error: { name: 'TypeError', message: 'the real cause' } });
  });
});

describe('idempotency keys outlive what depends on them', () => {
  it("a keyed duplicate gets the first task's result even after the result TTL (the result lives as long as its key)", async () => {
    const { app, broker, queue } = setup({ resultTtlMs: 50, idempotencyTtlMs: 60_000 });
    const t = app.task('k', { input: z.object({}) }, () => 'first value');
    const first = await t.enqueue({}, { idempotencyKey: 'once' });
    expect(await run(app, await fetchOne(broker, queue))).toBe('succeeded');
    await sleep(120);
    const dup = await t.enqueue({}, { idempotencyKey: 'once' });
    expect(dup).toMatchObject({ id: first.id, duplicate: true });
    expect(await dup.result({ timeoutMs: 500 })).toBe('first value');
  });

  it('a keyed task delayed past idempotencyTtlMs keeps its key until it is due', async () => {
    const { app } = setup({ idempotencyTtlMs: 100 });
    const t = app.task('later', { input: z.object({}) }, () => 1);
    // Due long after the check below: with 400 ms, a 200 ms sleep stretched by a loaded machine
    // could reach the due time, where the key may rightly go.
    const first = await t.enqueue({}, { idempotencyKey: 'late', delayMs: 60_000 });
    await sleep(200); // past its idempotencyTtlMs
    const again = await t.enqueue({}, { idempotencyKey: 'late', delayMs: 60_000 });
    expect(again).toMatchObject({ id: first.id, duplicate: true });
  });
});

describe('ctx', () => {
  it('works destructured and spread: signal, log and progress are there either way', async () => {
    const { app, broker, queue } = setup();
    const seen: Record<string, string[]> = {};
    const t = app.task('ctx.shape', { input: z.object({}) }, async (_, ctx) => {
      const { signal, log, progress, id, attempt } = ctx;
      const spread = { ...ctx, extra: 1 };
      seen.destructured = [typeof signal.aborted, typeof log.info, typeof progress, typeof id, typeof attempt];
      seen.spread = [typeof spread.signal?.aborted, typeof spread.log?.info, typeof spread.progress, typeof spread.id, String(spread.extra)];
      await progress({ done: 1 }); // detached: still records for this task
      return 'ok';
    });
    const h = await t.enqueue({});
    expect(await run(app, await fetchOne(broker, queue))).toBe('succeeded');
    expect(seen).toEqual({ destructured: ['boolean', 'function', 'function', 'string', 'number'], spread: ['boolean', 'function', 'function', 'string', '1'] });
    expect((await h.progress())?.value).toEqual({ done: 1 });
  });
});
