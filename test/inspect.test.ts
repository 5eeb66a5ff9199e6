import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ControlUnavailableError, createApp, WORKER_TTL_MS, type App } from '@celeriac/core';
import { gate, uniqueQueue } from '@celeriac/core/testing';
import { Scheduler, Worker } from '@celeriac/worker';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { urlWith } from './redis/helpers.js';
import { controlBackends } from './support/control-backends.js';

// app.inspect from another app on the same stores (as `celeriac inspect` runs): queues found
// without a list, the worker registry (a stopped worker leaves at once, a killed one within three
// heartbeats), one task through its life, the schedules a scheduler declared.
const { prefix, backends: BACKENDS, apps, workers } = controlBackends('inspect');

function open(options: object, queue: string): App {
  const app = createApp({ ...(options as { broker: string }), defaultQueue: queue });
  apps.push(app);
  return app;
}

describe.each(BACKENDS)('app.inspect on $name', ({ options }) => {
  it('lists every queue published to or served, with counts and the pause flag, to an app that declares none', async () => {
    const base = options();
    const [served, published] = [uniqueQueue('iq'), uniqueQueue('iq')];
    const producer = open(base, published);
    const t = producer.task('insp.noop', { input: z.object({}) }, () => 1);
    await t.enqueueMany([{ payload: {} }, { payload: {} }]);
    const workerApp = open(base, served);
    workerApp.task('insp.other', { input: z.object({}) }, () => 1);
    const w = new Worker(workerApp, { queues: [served], blockMs: 200 });
    workers.push(w);
    await w.start();
    const viewer = open(base, 'unused');
    await viewer.control.pause(published);
    await expect
      .poll(async () => (await viewer.inspect.queues()).filter((q) => q.queue === served || q.queue === published), { timeout: 5_000 })
      .toEqual([
        expect.objectContaining({ queue: [served, published].sort()[0], paused: [served, published].sort()[0] === published }),
        expect.objectContaining({ queue: [served, published].sort()[1], paused: [served, published].sort()[1] === published }),
      ]);
    const info = (await viewer.inspect.queues()).find((q) => q.queue === published)!;
    expect(info).toMatchObject({ ready: 2, delayed: 0, inFlight: 0, paused: true });
    await viewer.control.resume(published);
  });

  it('shows live workers with their queues and running tasks; a stopped worker leaves at once', async () => {
    const base = options();
    const queue = uniqueQueue('iw');
    const app = open(base, queue);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = app.task('insp.slow', { input: z.object({}) }, async () => {
      await gate;
      return 'ok';
    });
    const [a, b] = [new Worker(app, { queues: [queue], concurrency: 3, blockMs: 200 }), new Worker(app, { queues: [queue], concurrency: 2, blockMs: 200 })];
    workers.push(a, b);
    await Promise.all([a.start(), b.start()]);
    const viewer = open(base, queue);
    const mine = async () => (await viewer.inspect.workers()).filter((x) => x.queues.includes(queue));
    expect(await mine()).toHaveLength(2);
    const handle = await slow.enqueue({});
    // The next heartbeat carries the running task (and the task's inspect record names the worker).
    await expect.poll(async () => (await mine()).flatMap((x) => x.active.map((t) => t.id)), { timeout: 6_000 }).toEqual([handle.id]);
    const running = await viewer.inspect.task(handle.id);
    expect(running).toMatchObject({ id: handle.id, queue, task: 'insp.slow', state: 'active', worker: expect.any(String), startedAt: expect.any(Number) });
    const [one] = (await mine()).filter((x) => x.active.length === 1);
    expect(one).toMatchObject({ pid: process.pid, concurrency: expect.any(Number), processed: 0, failed: 0, version: expect.any(String), host: expect.any(String) });
    release();
    expect(await handle.result({ timeoutMs: 10_000 })).toBe('ok');
    await b.stop();
    expect((await mine()).length).toBe(1);
    expect(await viewer.inspect.task(handle.id)).toMatchObject({ state: 'succeeded', result: 'ok', attempt: 1, finishedAt: expect.any(Number) });
    expect(await viewer.inspect.task('no-such-task')).toBeNull();
  });

  it('shows a waiting task with its payload and attempts where the broker can look it up', async () => {
    const base = options();
    const queue = uniqueQueue('it');
    const app = open(base, queue);
    const t = app.task('insp.wait', { input: z.object({ to: z.string() }), retry: { maxAttempts: 4 } }, () => 1);
    const h = await t.enqueue({ to: 'ann@example.com' });
    const info = await open(base, queue).inspect.task(h.id);
    if (base.broker.startsWith('amqp')) {
      // RabbitMQ cannot look a message up by id: a waiting task is found once it runs or ends.
      expect(info).toBeNull();
      return;
    }
    const lookup = true;
    expect(info).toEqual({
      id: h.id,
      queue,
      state: 'pending',
      task: lookup ? 'insp.wait' : null,
      attempt: lookup ? 1 : null,
      maxAttempts: lookup ? 4 : null,
      payload: lookup ? { to: 'ann@example.com' } : null,
      enqueuedAt: lookup ? expect.any(Number) : null,
      progress: null,
      revoked: null,
      worker: null,
      startedAt: null,
      finishedAt: null,
    });
  });

  it('shows one queue in detail: the ready head in fetch order, delayed tasks with their eta, running tasks with their worker', async () => {
    const base = options();
    const queue = uniqueQueue('iqd');
    const app = open(base, queue);
    const stall = gate();
    const t = app.task('insp.q', { input: z.object({ n: z.number() }), retry: { maxAttempts: 5 } }, async ({ n }) => {
      if (n === 0) await stall.opened;
      return n;
    });
    const stalled = await t.enqueue({ n: 0 });
    // One slot, taken by the stalled task: what is enqueued next waits.
    const w = new Worker(app, { queues: [queue], concurrency: 1, blockMs: 200 });
    workers.push(w);
    await w.start();
    const viewer = open(base, queue);
    await expect.poll(async () => (await viewer.inspect.queue(queue)).running.map((r) => r.id), { timeout: 6_000 }).toEqual([stalled.id]);
    const low = await t.enqueue({ n: 1 });
    const urgent = await t.enqueue({ n: 2 }, { priority: 9 });
    const low2 = await t.enqueue({ n: 3 });
    const mid = await t.enqueue({ n: 4 }, { priority: 5 });
    const now = Date.now();
    const later = await t.enqueue({ n: 5 }, { delayMs: 60_000 });
    const sooner = await t.enqueue({ n: 6 }, { delayMs: 30_000 });

    const detail = await viewer.inspect.queue(queue);
    const [me] = (await viewer.inspect.workers()).filter((x) => x.queues.includes(queue));
    expect(detail).toMatchObject({ queue, ready: 4, delayed: 2, paused: false });
    expect(detail.running).toEqual([{ id: stalled.id, task: 'insp.q', queue, startedAt: expect.any(Number), worker: me!.id }]);
    if (base.broker.startsWith('amqp')) {
      // RabbitMQ cannot list a queue without consuming it (and counts in flight only this process's leases).
      expect([detail.readyTasks, detail.delayedTasks]).toEqual([null, null]);
    } else {
      expect(detail.inFlight).toBe(1);
      expect(detail.readyTasks!.map((x) => x.id)).toEqual([urgent.id, mid.id, low.id, low2.id]);
      expect(detail.readyTasks![0]).toEqual({ id: urgent.id, task: 'insp.q', attempt: 1, maxAttempts: 5, priority: 9, payload: { n: 2 }, enqueuedAt: expect.any(Number), eta: null, lastError: null });
      expect(detail.delayedTasks!.map((x) => x.id)).toEqual([sooner.id, later.id]);
      const etas = detail.delayedTasks!.map((x) => x.eta! - now);
      // The broker's clock keeps the due time (skew and latency apart, within a second here).
      expect(Math.abs(etas[0]! - 30_000)).toBeLessThan(1_000);
      expect(Math.abs(etas[1]! - 60_000)).toBeLessThan(1_000);
      expect((await viewer.inspect.queue(queue, { limit: 2 })).readyTasks!.map((x) => x.id)).toEqual([urgent.id, mid.id]);
    }
    await viewer.control.pause(queue);
    expect(await viewer.inspect.queue(queue)).toMatchObject({ paused: true });
    await viewer.control.resume(queue);
    await expect(viewer.inspect.queue(queue, { limit: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: 'inspect.queue limit must be an integer ≥ 1 (got 0)' });
    await expect(viewer.inspect.queue('no spaces')).rejects.toMatchObject({ code: 'INVALID_NAME' });
    stall.open();
    expect(await stalled.result({ timeoutMs: 10_000 })).toBe(0);
  });

  it('shows a finished task with the payload, times and worker its result record keeps (null in older records)', async () => {
    const base = options();
    const queue = uniqueQueue('if');
    const viewer = open(base, queue);
    const { results } = await viewer.connection();
    const record = { id: `done-${queue}`, queue, task: 'insp.done', state: 'failed' as const, error: { name: 'Error', message: 'nope', stack: 'Error: nope\n    at here' }, attempts: 3, finishedAt: 3_000, idempotencyKey: null };
    const rich = { ...record, payload: { to: '<img src=x onerror=alert(1)>' }, enqueuedAt: 1_000, startedAt: 2_000, worker: 'host-1-abc' };
    await results.store({ record: rich, ttlMs: 60_000, keyTtlMs: 60_000 });
    await results.store({ record: { ...record, id: `old-${queue}` }, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await viewer.inspect.task(rich.id, { queue })).toEqual({
      id: rich.id,
      queue,
      task: 'insp.done',
      state: 'failed',
      attempt: 3,
      maxAttempts: null,
      payload: { to: '<img src=x onerror=alert(1)>' },
      enqueuedAt: 1_000,
      startedAt: 2_000,
      worker: 'host-1-abc',
      finishedAt: 3_000,
      error: record.error,
      progress: null,
      revoked: null,
    });
    expect(await viewer.inspect.task(`old-${queue}`, { queue })).toMatchObject({ state: 'failed', payload: null, enqueuedAt: null, startedAt: null, worker: null, finishedAt: 3_000 });
    expect(await viewer.inspect.task(`old-${queue}`, { queue })).not.toHaveProperty('payloadOmitted');
    // A payload too large to keep: the record says so, and so does the task's view.
    await results.store({ record: { ...record, id: `big-${queue}`, payloadOmitted: 'too large', enqueuedAt: 1_000 }, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await viewer.inspect.task(`big-${queue}`, { queue })).toMatchObject({ payload: null, payloadOmitted: 'too large', enqueuedAt: 1_000 });
  });

  it('lists the schedules a scheduler declared, with the last and next runs', async () => {
    const base = options();
    const queue = uniqueQueue('is');
    const app = open(base, queue);
    const t = app.task('insp.tick', { input: z.object({}) }, () => 1);
    const name = `sched-${queue}`;
    app.schedule(name, { every: '1h', task: t, payload: {} });
    const scheduler = new Scheduler(app);
    const before = Date.now();
    await scheduler.start();
    await scheduler.stop();
    const viewer = open(base, queue);
    const [mine] = (await viewer.inspect.schedules()).filter((s) => s.name === name);
    expect(mine).toMatchObject({ name, task: 'insp.tick', queue, expression: '1h', tz: 'UTC', periodMs: 3_600_000 });
    const nextHour = (t: number) => (Math.floor(t / 3_600_000) + 1) * 3_600_000;
    expect([nextHour(before), nextHour(Date.now())]).toContain(mine!.nextRun); // the hour may turn meanwhile
  });
});

describe('app.inspect on redis: a SIGKILLed worker', () => {
  it('drops out of the registry within three heartbeats', async () => {
    const url = urlWith(prefix);
    const queue = uniqueQueue('ik');
    const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', fileURLToPath(new URL('./redis/kill-worker.ts', import.meta.url)), url, queue], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)));
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
    });
    const viewer = open({ broker: url }, queue);
    const listed = async () => (await viewer.inspect.workers()).filter((w) => w.queues.includes(queue)).map((w) => w.pid);
    expect(await listed()).toEqual([child.pid]);
    child.kill('SIGKILL');
    // Gone within three heartbeats (its record's TTL), plus a margin for a loaded machine.
    await expect.poll(listed, { timeout: WORKER_TTL_MS + 2_000, interval: 200 }).toEqual([]);
  }, 30_000);
});

describe('app.inspect on RabbitMQ alone', () => {
  it('refuses what needs a shared store, naming the fix; dead letters still list', async () => {
    const queue = uniqueQueue('ia');
    const app = open({ broker: AMQP_URL }, queue);
    for (const call of [() => app.inspect.queues(), () => app.inspect.queue(queue), () => app.inspect.workers(), () => app.inspect.task('x'), () => app.inspect.schedules()]) {
      await expect(call()).rejects.toThrow(ControlUnavailableError);
    }
    expect(await app.inspect.deadLetters(queue)).toEqual([]);
  });
});
