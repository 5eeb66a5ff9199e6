import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, MemoryBroker, type App } from '@celeriac/core';
import { gate, makeMessage, sleep } from '@celeriac/core/testing';
import { Worker } from './worker.js';

const apps: App[] = [];
function newApp() {
  const broker = new MemoryBroker();
  const app = createApp({ broker });
  apps.push(app);
  return { app, broker };
}
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('Worker', () => {
  it('never runs more than `concurrency` tasks at once, and uses all of them', async () => {
    const { app } = newApp();
    let running = 0;
    let peak = 0;
    const t = app.task('work', { input: z.object({ i: z.number() }) }, async ({ i }) => {
      peak = Math.max(peak, ++running);
      await sleep(20);
      running--;
      return i;
    });
    const handles = await t.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ payload: { i } })));
    const worker = new Worker(app, { concurrency: 4 });
    await worker.start();
    const values = await Promise.all(handles.map((h) => h.result({ timeoutMs: 10_000 })));
    await worker.stop();
    expect(values).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(peak).toBe(4);
  });

  it('stops gracefully: running tasks finish, unstarted ones stay queued', async () => {
    const { app, broker } = newApp();
    const hold = gate();
    let started = 0;
    const t = app.task('slow', { input: z.object({}) }, async () => {
      started++;
      await hold.opened;
      return 'finished';
    });
    const handles = await t.enqueueMany(Array.from({ length: 6 }, () => ({ payload: {} })));
    const worker = new Worker(app, { concurrency: 2 });
    await worker.start();
    await until(() => started === 2);
    const stopping = worker.stop();
    await sleep(20);
    hold.open();
    await stopping;
    expect(started).toBe(2);
    const states = await Promise.all(handles.map((h) => h.state()));
    expect(states.filter((s) => s === 'succeeded')).toHaveLength(2);
    expect(states.filter((s) => s === 'pending')).toHaveLength(4);
    expect(await broker.stats('default')).toMatchObject({ ready: 4, inFlight: 0, completed: 2 });
  });

  it('returns tasks still running after the grace period to the queue', async () => {
    const { app, broker } = newApp();
    const t = app.task('forever', { input: z.object({}) }, () => new Promise(() => {}));
    const handle = await t.enqueue({});
    const worker = new Worker(app, { concurrency: 1 });
    let sawStart = false;
    worker.on('task:started', () => (sawStart = true));
    await worker.start();
    await until(() => sawStart);
    await worker.stop({ graceMs: 50 });
    expect(await handle.state()).toBe('pending');
    expect(await broker.stats('default')).toMatchObject({ ready: 1, inFlight: 0, completed: 0 });
  });

  it('fails an attempt that ignores its signal past timeoutMs, then retries it', async () => {
    const { app } = newApp();
    const t = app.task('stubborn', { input: z.object({}), timeoutMs: 50, retry: { maxAttempts: 3, delayMs: 10, jitter: false } }, async (_, ctx) => {
      if (ctx.attempt === 1) await sleep(300); // ignores ctx.signal
      return ctx.attempt;
    });
    const worker = new Worker(app, { concurrency: 2 });
    const retrying: unknown[] = [];
    worker.on('task:retrying', (e) => retrying.push(e.error));
    await worker.start();
    const handle = await t.enqueue({});
    expect(await handle.result({ timeoutMs: 5_000 })).toBe(2);
    await worker.stop();
    expect(retrying).toEqual([expect.objectContaining({ name: 'TaskTimeoutError', code: 'TASK_TIMEOUT' })]);
  });

  it('dead-letters an invalid payload found on the wire, with the reason, and keeps working', async () => {
    const { app, broker } = newApp();
    const runs: number[] = [];
    const t = app.task('square', { input: z.object({ n: z.number() }) }, ({ n }) => {
      runs.push(n);
      return n * n;
    });
    const failed: string[] = [];
    const worker = new Worker(app, { concurrency: 2 });
    worker.on('task:failed', (e) => failed.push(e.reason));
    await worker.start();
    await broker.publish([makeMessage('default', { task: 'square', payload: { n: 'four' } })], { keyTtlMs: 1_000 });
    broker.injectRaw('default', '{"v":1,"id":"half a message"');
    expect(await (await t.enqueue({ n: 3 })).result({ timeoutMs: 5_000 })).toBe(9);
    await until(async () => (await broker.stats('default')).dead === 2);
    await worker.stop();
    expect(runs).toEqual([3]);
    const dead = await broker.deadLetters('default');
    expect(dead.map((d) => d.reason)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^invalid payload for task "square": n: /), expect.stringMatching(/^malformed message: not JSON/)]),
    );
    expect(failed).toEqual([expect.stringMatching(/invalid payload/)]);
  });

  it('renews leases so a task running longer than its lease is not handed out again', async () => {
    const { app, broker } = newApp();
    let runs = 0;
    const t = app.task('long', { input: z.object({}) }, async () => {
      runs++;
      await sleep(3_000);
      return 'ok';
    });
    // A lease of 1 s (not less): the worker gives up on a lease it could not confirm for 5/6 of
    // it, and a loaded 2-core machine can stall an event loop for a few hundred ms (with 400 ms,
    // a 200 ms stall was enough to lose the lease). The task runs three leases.
    const leaseMs = 1_000;
    const worker = new Worker(app, { concurrency: 1, leaseMs });
    await worker.start();
    const handle = await t.enqueue({});
    await until(() => runs === 1);
    // A second consumer polling the queue meanwhile (for over 2 leases) must get nothing.
    const stolen = await broker.fetch({ queues: ['default'], max: 1, leaseMs: 1_000, waitMs: 2 * leaseMs + 200 });
    expect(stolen).toEqual([]);
    expect(await handle.result({ timeoutMs: 5_000 })).toBe('ok');
    await worker.stop();
    expect(runs).toBe(1);
  });

  it('emits typed events in order for a task that retries then succeeds', async () => {
    const { app } = newApp();
    const t = app.task('twice', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 0, jitter: false } }, (_, ctx) => {
      if (ctx.attempt === 1) throw new Error('first try fails');
      return 'second';
    });
    const worker = new Worker(app);
    const seen: string[] = [];
    for (const type of ['task:started', 'task:succeeded', 'task:retrying', 'task:failed'] as const) {
      worker.on(type, (e: { type: string; message: { attempt: number } }) => seen.push(`${e.type}#${e.message.attempt}`));
    }
    await worker.start();
    expect(await (await t.enqueue({})).result({ timeoutMs: 5_000 })).toBe('second');
    await worker.stop();
    expect(seen).toEqual(['task:started#1', 'task:retrying#1', 'task:started#2', 'task:succeeded#2']);
  });

  it('rejects bad options with the field named', () => {
    const { app } = newApp();
    expect(() => new Worker(app, { concurrency: 0 })).toThrow(/concurrency: .*\(got 0\)/);
  });
});

describe('keepResult: false', () => {
  it('acks successes without storing them, but still stores failures', async () => {
    const { app, broker } = newApp();
    const fire = app.task('fire', { input: z.object({ fail: z.boolean() }), keepResult: false, retry: { maxAttempts: 1 } }, ({ fail }) => {
      if (fail) throw new Error('nope');
      return 'unseen';
    });
    const worker = new Worker(app);
    await worker.start();
    const ok = await fire.enqueue({ fail: false });
    const bad = await fire.enqueue({ fail: true });
    await expect(bad.result({ timeoutMs: 5_000 })).rejects.toThrow(/nope/);
    await until(async () => (await broker.stats('default')).completed === 1);
    await worker.stop();
    expect(await broker.results.get(ok)).toBeNull();
    expect(await ok.result({ timeoutMs: 50 }).catch((e: { code: string }) => e.code)).toBe('RESULT_TIMEOUT');
  });
});

describe('robustness', () => {
  it('stops cleanly when the broker was closed under it (no spinning fetch loop)', async () => {
    const { app, broker } = newApp();
    const worker = new Worker(app, { blockMs: 50 });
    await worker.start();
    await broker.close();
    const timer = sleep(100).then(() => worker.stop());
    await timer;
  });

  it('a throwing event listener neither re-runs nor loses the task', async () => {
    const { app } = newApp();
    let runs = 0;
    const t = app.task('once', { input: z.object({}) }, () => ++runs);
    const worker = new Worker(app);
    worker.on('task:succeeded', () => {
      throw new Error('listener bug');
    });
    worker.on('task:started', () => {
      throw new Error('listener bug');
    });
    await worker.start();
    expect(await (await t.enqueue({})).result({ timeoutMs: 5_000 })).toBe(1);
    await worker.stop();
    expect(runs).toBe(1);
  });

  it('stop() during start() leaves nothing running', async () => {
    const { app } = newApp();
    let runs = 0;
    const t = app.task('never', { input: z.object({}) }, () => ++runs);
    await t.enqueue({});
    const worker = new Worker(app);
    const starting = worker.start();
    const stopping = worker.stop();
    await Promise.all([starting, stopping, worker.start()]);
    await sleep(100);
    expect(runs).toBe(0);
  });

  it('a handler that ignores its time limit keeps its slot and its key until it really ends', async () => {
    const { app } = newApp();
    const spans: { attempt: number; from: number; to: number }[] = [];
    const t = app.task('slowpay', { input: z.object({}), timeoutMs: 50, retry: { maxAttempts: 2, delayMs: 0, jitter: false } }, async (_, ctx) => {
      const from = Date.now();
      if (ctx.attempt === 1) await sleep(300); // ignores ctx.signal
      spans.push({ attempt: ctx.attempt, from, to: Date.now() });
      return ctx.attempt;
    });
    const other = app.task('other', { input: z.object({}) }, () => Date.now());
    const worker = new Worker(app, { concurrency: 1 });
    await worker.start();
    const keyed = await t.enqueue({}, { idempotencyKey: 'pay-9' });
    await sleep(100);
    const next = await other.enqueue({});
    const otherStartedAt = await next.result({ timeoutMs: 5_000 });
    expect(await keyed.result({ timeoutMs: 10_000 })).toBe(2);
    await worker.stop();
    const [first, second] = spans;
    expect(first!.attempt).toBe(1);
    expect(second!.from).toBeGreaterThanOrEqual(first!.to);
    expect(otherStartedAt as number).toBeGreaterThanOrEqual(first!.to);
  });

  it('result() rejects once the app is closed instead of waiting forever', async () => {
    const app = createApp({ broker: 'memory://' });
    const t = app.task('t', { input: z.object({}) }, () => 1);
    const handle = await t.enqueue({});
    const waiting = handle.result();
    await app.close();
    await expect(waiting).rejects.toThrow(/result store is closed/);
    await expect(handle.result({ timeoutMs: Number.NaN })).rejects.toThrow(/timeoutMs must be a number/);
  });

  it('refuses queue names that would escape a Redis key', () => {
    const { app } = newApp();
    expect(() => new Worker(app, { queues: ['ok', 'bad}{'] })).toThrow(/queues\.1: must be a valid queue name/);
  });
});

describe('signals', () => {
  it('listens for SIGTERM before the start has finished, so a signal during it stops gracefully', async () => {
    const broker = new MemoryBroker();
    const app = createApp({ broker, defaultQueue: 'sig' });
    apps.push(app);
    const schedule = app.task('sig.tick', { input: z.object({}) }, () => 1);
    app.schedule('sig.every', { every: '1h', task: schedule, payload: {} });
    // The scheduler's start waits on the store's marks: held here until the test lets it go.
    const marks = broker.results.marks;
    const held = gate();
    const getMark = marks.getMark.bind(marks);
    marks.getMark = async (name) => {
      await held.opened;
      return getMark(name);
    };
    const before = process.listenerCount('SIGTERM');
    const worker = new Worker(app, { queues: ['sig'], beat: true, handleSignals: true, blockMs: 50 });
    const starting = worker.start();
    await expect.poll(() => process.listenerCount('SIGTERM')).toBe(before + 1); // fetching already, start not done
    held.open();
    await starting;
    await worker.stop({ graceMs: 100 });
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
