import { ControlUnavailableError, createApp, TaskFailedError, TaskRevokedError, ValidationError, type App, type TaskHandle } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { controlBackends } from './support/control-backends.js';

// app.control on every broker that keeps shared state: pause and resume, revoke (before start,
// while delayed, across a worker restart, with terminate), and RabbitMQ alone refusing clearly.
const { backends: BACKENDS, apps, workers } = controlBackends('control');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The outcome a worker stored for a task (not what a handle infers). */
async function storedState(handle: TaskHandle): Promise<string | undefined> {
  const app = apps[0]!;
  return (await (await app.connection()).results.get(handle))?.state;
}

describe.each(BACKENDS)('app.control on $name', ({ options }) => {
  /** An app with one task that records its runs, and can be told to wait for its signal. */
  function setup(base = options()) {
    const queue = uniqueQueue('ctl');
    const app = createApp({ ...base, defaultQueue: queue });
    apps.push(app);
    const runs: string[] = [];
    const aborts: unknown[] = [];
    const work = app.task('ctl.work', { input: z.object({ wait: z.boolean().default(false) }), retry: { maxAttempts: 3, delayMs: 100, jitter: false } }, async ({ wait }, ctx) => {
      runs.push(ctx.id);
      if (!wait) return 'done';
      const signal = ctx.signal;
      await new Promise<void>((_, reject) =>
        signal.addEventListener('abort', () => {
          aborts.push(signal.reason);
          reject(signal.reason as Error);
        }),
      );
    });
    const start = async (a: App = app) => {
      const w = new Worker(a, { queues: [queue], concurrency: 4, leaseMs: 5_000, blockMs: 200 });
      workers.push(w);
      await w.start();
      return w;
    };
    return { app, base, queue, work, runs, aborts, start };
  }

  it('pause stops every worker fetching the queue while enqueueing goes on; resume lets them run', async () => {
    const { app, queue, work, runs, start } = setup();
    const both = await Promise.all([start(), start()]);
    await app.control.pause(queue);
    expect(await app.control.paused()).toContain(queue);
    await expect.poll(() => both.map((w) => w.pausedQueues), { timeout: 10_000 }).toEqual([[queue], [queue]]); // both saw it
    const handles = await work.enqueueMany(Array.from({ length: 5 }, () => ({ payload: {} })));
    await sleep(1_500);
    expect(runs).toEqual([]);
    expect(await handles[0]!.state()).not.toBe('succeeded');
    expect(await app.control.resume(queue)).toBe(true);
    expect(await app.control.resume(queue)).toBe(false); // not paused any more: says so
    expect(await Promise.all(handles.map((h) => h.result({ timeoutMs: 10_000 })))).toEqual(Array(5).fill('done'));
    expect(await app.control.paused()).not.toContain(queue);
  });

  it('a task revoked before it starts is never run and ends revoked; revoking a finished task says so', async () => {
    const { work, runs, start } = setup();
    const revoked = await work.enqueue({});
    expect(await revoked.revoke()).toEqual({ id: revoked.id, status: 'revoked' });
    await start();
    const err = await revoked.result({ timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err).toMatchObject({ state: 'revoked', error: { name: 'TaskRevokedError' } });
    expect(await storedState(revoked)).toBe('revoked'); // a worker settled it so, not the handle's guess
    expect(await revoked.state()).toBe('revoked');
    const done = await work.enqueue({});
    expect(await done.result({ timeoutMs: 10_000 })).toBe('done');
    expect(await done.revoke()).toEqual({ id: done.id, status: 'finished', state: 'succeeded' });
    expect(runs).toEqual([done.id]);
  });

  it('a revoked delayed task stays revoked across a restart of every worker', async () => {
    const { base, queue, work, runs, start } = setup();
    const first = await start();
    const delayed = await work.enqueue({}, { delayMs: 2_500 });
    await delayed.revoke();
    await first.stop();
    // A fresh process: a new app on the same stores, a new worker.
    const other = createApp({ ...base, defaultQueue: queue });
    apps.push(other);
    other.task('ctl.work', { input: z.object({}) }, () => void runs.push('restarted'));
    await start(other);
    await expect(delayed.result({ timeoutMs: 15_000 })).rejects.toMatchObject({ state: 'revoked' });
    expect(await storedState(delayed)).toBe('revoked'); // the restarted worker dropped it when due
    expect(runs).toEqual([]);
  });

  it('a revocation that names a queue applies there only; a bad task id is refused', async () => {
    const { app, queue, work, runs, start } = setup();
    const other = createApp({ ...options(), defaultQueue: uniqueQueue('ctl') });
    apps.push(other);
    const sameIdElsewhere = other.task('ctl.work', { input: z.object({}) }, () => void runs.push('elsewhere'));
    await app.control.revoke('order-77', { queue });
    const here = await work.enqueue({}, { id: 'order-77' });
    const there = await sameIdElsewhere.enqueue({}, { id: 'order-77' });
    await start();
    const w2 = new Worker(other, { queues: [there.queue], blockMs: 200 });
    workers.push(w2);
    await w2.start();
    await expect(here.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'revoked' });
    await there.result({ timeoutMs: 10_000 });
    expect(runs).toEqual(['elsewhere']);
    await expect(app.control.revoke('')).rejects.toThrow(/invalid task id ""/);
    await expect(app.control.revoke('has space')).rejects.toThrow(ValidationError);
  });

  it('a redrive lifts the revocation of the task it puts back', async () => {
    const { app, queue, runs, start } = setup();
    let fail = true;
    const flaky = app.task('ctl.flaky-revoked', { input: z.object({}), retry: { maxAttempts: 1 } }, (_, ctx) => {
      runs.push(ctx.id);
      if (fail) throw new Error('not yet');
      return 'ok';
    });
    await start();
    const h = await flaky.enqueue({});
    await expect(h.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await h.revoke(); // the operator revoked it, then changed their mind and redrove it
    await expect.poll(async () => (await app.inspect.deadLetters(queue)).length, { timeout: 10_000 }).toBe(1);
    fail = false;
    expect(await app.control.redrive(queue)).toEqual({ redriven: [h.id], refused: [] });
    expect(await h.result({ timeoutMs: 15_000 })).toBe('ok');
    expect(runs).toEqual([h.id, h.id]);
  });

  it('a redrive lifts no revocation of a task that is not its dead letter, nor one naming another queue', async () => {
    const { app, queue, work, runs, start } = setup();
    const delayed = await work.enqueue({}, { delayMs: 1_500 });
    await delayed.revoke();
    await app.control.revoke('same-id', { queue: 'other-queue' });
    const result = await app.control.redrive(queue, { ids: [delayed.id, 'same-id'] });
    expect(result.refused.map((r) => r.id).sort()).toEqual([delayed.id, 'same-id'].sort());
    await start();
    await expect(delayed.result({ timeoutMs: 15_000 })).rejects.toMatchObject({ state: 'revoked' });
    expect(runs).toEqual([]);
    const revoked = await (await app.connection()).results.coordination!.getRecords('*', 'revoked', ['same-id']);
    expect(revoked).toEqual([expect.objectContaining({ queue: 'other-queue' })]);
  });

  it('result() of a task revoked while it waits far ahead says revoked once that is sure, not at its eta', async () => {
    const { work, start } = setup();
    await start();
    const later = await work.enqueue({}, { delayMs: 120_000 });
    await later.revoke();
    const err = await later.result({ timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ state: 'revoked', error: { name: 'TaskRevokedError' } });
  });

  it('terminate aborts a running task with TaskRevokedError; it ends revoked and is not retried', async () => {
    const { work, runs, aborts, start } = setup();
    await start();
    const running = await work.enqueue({ wait: true });
    await expect.poll(() => runs, { timeout: 10_000 }).toEqual([running.id]);
    await running.revoke({ terminate: true });
    await expect(running.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'revoked' });
    expect(await storedState(running)).toBe('revoked');
    await expect.poll(() => aborts, { timeout: 5_000 }).toHaveLength(1);
    await expect.poll(() => running.state(), { timeout: 5_000 }).toBe('revoked');
    expect(aborts[0]).toBeInstanceOf(TaskRevokedError);
    await sleep(500); // a retry (100 ms backoff) would have started by now
    expect(runs).toEqual([running.id]);
  });
});

describe.each([...BACKENDS, { name: 'amqp alone', options: () => ({ broker: AMQP_URL }) }])('dead letters through app.control on $name', ({ options }) => {
  it('a dead letter listed by id is redriven and succeeds as attempt 1; discard and purge remove for good', async () => {
    const queue = uniqueQueue('dl');
    const app = createApp({ ...options(), defaultQueue: queue });
    apps.push(app);
    let fixed = false;
    const attempts: number[] = [];
    const flaky = app.task('ctl.flaky', { input: z.object({ n: z.number() }), retry: { maxAttempts: 1 } }, ({ n }, ctx) => {
      attempts.push(ctx.attempt);
      if (!fixed) throw new Error(`bug ${n}`);
      return n;
    });
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const [a, b] = await flaky.enqueueMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    await expect(a!.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await expect(b!.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    // The outcome is stored before the delivery is dead-lettered (RabbitMQ): wait for both letters.
    await expect.poll(async () => (await app.inspect.deadLetters(queue)).map((d) => d.id).sort(), { timeout: 10_000 }).toEqual([a!.id, b!.id].sort());
    const dead = await app.inspect.deadLetters(queue);
    expect(dead.find((d) => d.id === a!.id)!.reason).toMatch(/bug 1/);
    fixed = true; // the bug is fixed: put the first one back
    expect(await app.control.redrive(queue, { ids: [a!.id, 'no-such-letter'] })).toEqual({ redriven: [a!.id], refused: [{ id: 'no-such-letter', reason: 'not found' }] });
    expect(await a!.result({ timeoutMs: 10_000 })).toBe(1);
    expect(attempts).toEqual([1, 1, 1]); // a fresh attempt 1, not attempt 2 of 1
    expect((await app.inspect.deadLetters(queue)).map((d) => d.id)).toEqual([b!.id]);
    expect(await app.control.discard(queue, { ids: [b!.id] })).toBe(1);
    expect(await app.inspect.deadLetters(queue)).toEqual([]);
    await expect(app.control.discard(queue, { ids: [] })).rejects.toThrow(/name the dead letters/);
    await w.stop();
    await flaky.enqueueMany([{ payload: { n: 3 } }, { payload: { n: 4 } }, { payload: { n: 5 }, options: { delayMs: 60_000 } }]);
    expect(await app.control.purge(queue)).toBe(3);
    expect(await (await app.connection()).broker.stats(queue)).toMatchObject({ ready: 0, delayed: 0 });
  });
});

describe.each(BACKENDS)('progress on $name', ({ options }) => {
  it('a handler reports progress that another app on the same stores reads while it runs, and after', async () => {
    const base = options();
    const queue = uniqueQueue('prg');
    const app = createApp({ ...base, defaultQueue: queue });
    const reader = createApp({ ...base, defaultQueue: queue });
    apps.push(app, reader);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const job = app.task('ctl.progress', { input: z.object({}) }, async (_, ctx) => {
      await ctx.progress({ done: 40, total: 100 });
      await finished;
      await ctx.progress({ done: 100, total: 100 });
      return 'ok';
    });
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const handle = await job.enqueue({});
    const remote = reader.task('ctl.progress', { input: z.object({}) }, () => 'unused').handle(handle.id);
    await expect.poll(() => remote.progress().then((p) => p?.value), { timeout: 10_000 }).toEqual({ done: 40, total: 100 });
    finish();
    expect(await handle.result({ timeoutMs: 10_000 })).toBe('ok');
    expect(await remote.progress()).toMatchObject({ value: { done: 100, total: 100 }, at: expect.any(Number) });
    expect(await reader.task('ctl.other', { input: z.object({}) }, () => 1).handle('never-ran').progress()).toBeNull();
  });
});

describe('handles re-attached on RabbitMQ alone', () => {
  it('never report a task enqueued by another process as pending: they fail at once, naming the fix; the same process still can', async () => {
    const queue = uniqueQueue('ra');
    const [producer, other] = [createApp({ broker: AMQP_URL, defaultQueue: queue }), createApp({ broker: AMQP_URL, defaultQueue: queue })];
    apps.push(producer, other);
    const define = (a: App) => a.task('ctl.reattach', { input: z.object({}) }, () => 'done');
    const [t, elsewhere] = [define(producer), define(other)];
    const w = new Worker(producer, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const handle = await t.enqueue({});
    expect(await handle.result({ timeoutMs: 10_000 })).toBe('done');
    expect(await t.handle(handle.id).result({ timeoutMs: 1_000 })).toBe('done'); // this process knows it
    // At once: without the check, result() would wait forever (the vitest timeout would fail it).
    for (const call of [() => elsewhere.handle(handle.id).state(), () => elsewhere.handle(handle.id).result()]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlUnavailableError);
      expect((err as Error).message).toMatch(/enqueued by another process.*results: 'redis:\/\/…'/);
    }
  });
});

describe('app.control on RabbitMQ alone', () => {
  it('refuses each control call at once, naming the fix', async () => {
    const queue = uniqueQueue('ctl');
    const app = createApp({ broker: AMQP_URL, defaultQueue: queue });
    apps.push(app);
    const t = app.task('ctl.alone', { input: z.object({}) }, () => 1);
    const handle = t.handle('some-id');
    for (const call of [() => app.control.pause(queue), () => app.control.resume(queue), () => app.control.paused(), () => handle.revoke(), () => app.control.revoke('x'), () => handle.progress()]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlUnavailableError);
      expect((err as Error).message).toMatch(/results: 'redis:\/\/…'/);
    }
  });
});
