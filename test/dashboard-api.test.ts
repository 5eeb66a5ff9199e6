import { createApp, type App, type QueueDetail } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import type { DeadLettersView, Info, QueuesView, QueueView, SchedulesView, TaskView, WorkersView } from '@celeriac/dashboard';
import { Scheduler, Worker } from '@celeriac/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { controlBackends } from './support/control-backends.js';
import { XSS, api, post, serve as serveOn, summary } from './support/dashboard-http.js';
import { parsePrometheus, sampleValue } from './support/prometheus.js';

// The dashboard's JSON API and /metrics over real HTTP, on every broker that keeps control state
// and on RabbitMQ alone (degraded): what a page or a script sees after enqueues, runs, failures
// and each action, with each action's effect checked through app.inspect. The HTTP rules
// (token, host, methods, origin, headers, mounting) are in dashboard-http.test.ts.
const { backends, apps, workers } = controlBackends('dash');
const served: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of served.splice(0)) await s.close();
});
const serve = (app: App, options: Parameters<typeof serveOn>[2] = {}) => serveOn(served, app, options);

function setup(options: object) {
  const queue = uniqueQueue('dash');
  const app = createApp({ ...(options as { broker: string }), defaultQueue: queue });
  apps.push(app);
  let failing = true;
  const double = app.task('dash.double', { input: z.object({ n: z.number() }) }, ({ n }) => n * 2);
  const flaky = app.task('dash.flaky', { input: z.object({ html: z.string() }), retry: { maxAttempts: 1 } }, () => {
    if (failing) throw new Error(`boom ${XSS}`);
    return 'fixed';
  });
  const startWorker = async () => {
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    return w;
  };
  return { app, queue, double, flaky, startWorker, heal: () => (failing = false) };
}


describe.each(backends)('dashboard API on $name', ({ name, options }) => {
  it('lists a queue after an enqueue and follows its counts; shows its waiting tasks; purge empties it', async () => {
    const { app, queue, double } = setup(options());
    const url = await serve(app);
    const [a, b] = await double.enqueueMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    const later = await double.enqueue({ n: 3 }, { delayMs: 600_000 });
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ queue, ready: 2, delayed: 1, inFlight: 0, dead: 0, paused: false });
    const view = await api<QueueView>(url, `api/queues/${queue}`);
    expect(view.status).toBe(200);
    expect(view.body.queue).toMatchObject({ queue, ready: 2, delayed: 1, running: [] });
    if (name === 'amqp+redis') {
      expect([view.body.queue.readyTasks, view.body.queue.delayedTasks]).toEqual([null, null]); // RabbitMQ cannot list without taking
    } else {
      expect(view.body.queue.readyTasks?.map((t) => [t.id, t.task, t.payload])).toEqual([
        [a!.id, 'dash.double', { n: 1 }],
        [b!.id, 'dash.double', { n: 2 }],
      ]);
      expect(view.body.queue.delayedTasks?.map((t) => t.id)).toEqual([later.id]);
      expect(view.body.queue.delayedTasks?.[0]?.eta).toBeGreaterThan(Date.now() + 500_000);
      expect((await api<QueueView>(url, `api/queues/${queue}?limit=1`)).body.queue.readyTasks).toHaveLength(1);
    }
    expect(view.body.rates).toMatchObject({ stepMs: 1_000 });
    expect(await post(url, `api/queues/${queue}/purge`)).toEqual({ status: 200, body: { queue, purged: 3 } });
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ ready: 0, delayed: 0 });
  });

  it('a failed task: its page has payload, error and stack; its dead letter is decoded; redrive runs it to success; discard removes one', async () => {
    const { app, queue, double, flaky, startWorker, heal } = setup(options());
    const url = await serve(app);
    const worker = await startWorker();
    const ok = await double.enqueue({ n: 21 });
    expect(await ok.result({ timeoutMs: 10_000 })).toBe(42);
    const [bad, worse] = await flaky.enqueueMany([{ payload: { html: XSS } }, { payload: { html: 'second' } }]);
    await expect.poll(async () => (await api<TaskView>(url, `api/tasks/${bad!.id}`)).body.task?.state, { timeout: 10_000 }).toBe('failed');
    await expect.poll(async () => (await api<TaskView>(url, `api/tasks/${worse!.id}`)).body.task?.state, { timeout: 10_000 }).toBe('failed');

    const task = (await api<TaskView>(url, `api/tasks/${bad!.id}?queue=${queue}`)).body.task;
    expect(task).toMatchObject({ id: bad!.id, task: 'dash.flaky', queue, state: 'failed', attempt: 1, payload: { html: XSS }, worker: worker.id });
    expect(task.error).toMatchObject({ name: 'Error', message: `boom ${XSS}` });
    expect(task.error?.stack).toContain(`boom ${XSS}`);
    expect(task.startedAt).toBeGreaterThan(0);
    expect(task.finishedAt).toBeGreaterThanOrEqual(task.startedAt!);
    const done = (await api<TaskView>(url, `api/tasks/${ok.id}`)).body.task;
    expect(done).toMatchObject({ state: 'succeeded', result: 42, payload: null }); // keepPayload 'failures': a success's record keeps none
    expect(await api(url, 'api/tasks/no-such-task')).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.stringContaining('no-such-task not found') } } });

    // Where the store is apart (RabbitMQ + Redis) the outcome is stored before the letter is buried.
    await expect.poll(async () => (await app.inspect.deadLetters(queue)).length, { timeout: 5_000 }).toBe(2);
    // deadOrder tells the truth: with fewer asked than there are, the broker returns the newest or the oldest.
    const all = (await app.inspect.deadLetters(queue)).map((d) => d.id);
    const { deadOrder } = (await api<QueueView>(url, `api/queues/${queue}`)).body;
    expect((await app.inspect.deadLetters(queue, { limit: 1 })).map((d) => d.id)).toEqual([deadOrder === 'newest' ? all[1] : all[0]]);
    const dead = (await api<DeadLettersView>(url, `api/queues/${queue}/dead`)).body;
    expect(dead.queue).toBe(queue);
    const letter = dead.letters.find((l) => l.id === bad!.id);
    expect(letter).toMatchObject({ id: bad!.id, task: 'dash.flaky', payload: { html: XSS }, attempt: 1, reason: expect.stringContaining(`boom ${XSS}`) });
    expect(letter?.error).toMatchObject({ message: `boom ${XSS}` });
    expect((await api<QueueView>(url, `api/queues/${queue}`)).body.dead.map((d) => d.id).sort()).toEqual([bad!.id, worse!.id].sort());
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ dead: 2 });

    expect(await post(url, `api/queues/${queue}/discard`, { ids: [worse!.id] })).toEqual({ status: 200, body: { queue, discarded: 1 } });
    expect((await app.inspect.deadLetters(queue)).map((d) => d.id)).toEqual([bad!.id]);

    heal();
    expect(await post(url, `api/queues/${queue}/redrive`, { ids: [bad!.id] })).toEqual({ status: 200, body: { redriven: [bad!.id], refused: [] } });
    await expect.poll(async () => (await api<TaskView>(url, `api/tasks/${bad!.id}`)).body.task?.state, { timeout: 10_000 }).toBe('succeeded');
    expect((await api<TaskView>(url, `api/tasks/${bad!.id}`)).body.task.result).toBe('fixed');
    expect(await app.inspect.deadLetters(queue)).toEqual([]);
  }, 60_000);

  it('pause and resume through the API flip the queue for every worker; revoke ends a waiting task revoked', async () => {
    const { app, queue, double, startWorker } = setup(options());
    const url = await serve(app);
    const worker = await startWorker();
    expect(await post(url, `api/queues/${queue}/pause`)).toEqual({ status: 200, body: { queue, paused: true } });
    expect(await app.control.paused()).toContain(queue);
    await expect.poll(() => worker.pausedQueues, { timeout: 5_000 }).toContain(queue); // the worker heard: it fetches nothing from the queue now
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ paused: true });
    const waiting = await double.enqueue({ n: 5 });
    expect(await post(url, `api/tasks/${waiting.id}/revoke`, { queue })).toEqual({ status: 200, body: { id: waiting.id, status: 'revoked' } });
    // RabbitMQ cannot look a waiting message up by id: the task is found once a worker settles it.
    if (name !== 'amqp+redis') expect((await api<TaskView>(url, `api/tasks/${waiting.id}`)).body.task.revoked).toMatchObject({ queue, terminate: false });
    expect(await post(url, `api/queues/${queue}/resume`)).toEqual({ status: 200, body: { queue, paused: false, was: true } });
    expect(await app.control.paused()).not.toContain(queue);
    await expect.poll(() => worker.pausedQueues, { timeout: 5_000 }).not.toContain(queue);
    await expect.poll(async () => (await api<TaskView>(url, `api/tasks/${waiting.id}`)).body.task?.state, { timeout: 10_000 }).toBe('revoked');
    const ran = await double.enqueue({ n: 6 });
    expect(await ran.result({ timeoutMs: 10_000 })).toBe(12);
    expect(await post(url, `api/tasks/${ran.id}/revoke`, { queue, terminate: true })).toEqual({ status: 200, body: { id: ran.id, status: 'finished', state: 'succeeded' } });
    expect(await post(url, `api/queues/${queue}/resume`)).toEqual({ status: 200, body: { queue, paused: false, was: false } });
  }, 30_000);

  it('an unknown queue is a 404 and pausing it is refused; ?points sends the tail of the series; deadOrder says which dead letters are shown', async () => {
    const { app, queue, double } = setup(options());
    const url = await serve(app, { historyMs: 120_000 });
    const typo = `${queue}-typo`;
    expect(await api(url, `api/queues/${typo}`)).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.stringContaining(`no queue "${typo}"`) } } });
    expect((await post(url, `api/queues/${typo}/pause`)).status).toBe(404);
    expect(await app.control.paused()).not.toContain(typo);
    // Ahead of a deploy: {"force": true} pauses a valid name nothing knows yet; a bad name is still refused.
    expect(await post(url, `api/queues/${queue}-later/pause`, { force: true })).toEqual({ status: 200, body: { queue: `${queue}-later`, paused: true } });
    expect(await app.control.paused()).toContain(`${queue}-later`);
    expect((await post(url, `api/queues/${encodeURIComponent('bad name!')}/pause`, { force: true })).status).toBe(400);
    expect((await post(url, `api/queues/${queue}-later/resume`)).status).toBe(200);
    await double.enqueue({ n: 1 }, { queue: typo });
    expect((await api(url, `api/queues/${typo}`)).status).toBe(200); // it holds a task: it exists
    const listed = await serve(app, { queues: [`${queue}-given`] });
    expect((await api(listed, `api/queues/${queue}-given`)).status).toBe(200); // given in `queues`: listed even when empty

    await expect.poll(async () => (await api<QueuesView>(url, 'api/queues?points=2')).body.rates.processed.length, { timeout: 5_000 }).toBe(2);
    const all = (await api<QueuesView>(url, 'api/queues')).body;
    expect(all.rates.processed.length).toBeGreaterThan(0);
    expect(all.rates.processed.length).toBeLessThanOrEqual(120);
    expect(all.queues.every((q) => q.rates.processed.length > 0 && q.rates.processed.length <= 120)).toBe(true);
    expect((await api<QueueView>(url, `api/queues/${typo}?points=1`)).body.rates.processed).toHaveLength(1);
    expect((await api(url, 'api/queues?points=121')).status).toBe(400);
    expect((await api(url, 'api/queues?points=0')).status).toBe(400);
    expect((await api<QueueView>(url, `api/queues/${typo}`)).body.deadOrder).toBe(name === 'amqp+redis' ? 'oldest' : 'newest');
  });

  it('workers, schedules, /metrics and the rate series follow what ran', async () => {
    const { app, queue, double, flaky, startWorker } = setup(options());
    const url = await serve(app);
    const t = app.task('dash.tick', { input: z.object({}) }, () => 1);
    const schedule = `dash-${queue}`;
    app.schedule(schedule, { every: '1h', task: t, payload: {} });
    const scheduler = new Scheduler(app);
    await scheduler.start();
    await scheduler.stop();
    const worker = await startWorker();
    await expect.poll(async () => (await api<WorkersView>(url, 'api/workers')).body.workers.map((w) => w.id), { timeout: 5_000 }).toContain(worker.id);
    const me = (await api<WorkersView>(url, 'api/workers')).body.workers.find((w) => w.id === worker.id)!;
    expect(me).toMatchObject({ queues: [queue], concurrency: worker.options.concurrency, pid: process.pid });
    const schedules = (await api<SchedulesView>(url, 'api/schedules')).body.schedules.filter((s) => s.name === schedule);
    expect(schedules).toEqual([expect.objectContaining({ name: schedule, task: 'dash.tick', queue, expression: '1h', tz: 'UTC' })]);

    const handles = await double.enqueueMany([1, 2, 3].map((n) => ({ payload: { n } })));
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 10_000 })));
    const failed = await flaky.enqueue({ html: 'x' });
    await expect.poll(async () => (await app.inspect.task(failed.id))?.state, { timeout: 10_000 }).toBe('failed');
    await double.enqueue({ n: 9 }, { delayMs: 600_000 });

    const scrape = async () => {
      const res = await fetch(new URL('metrics', url));
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await res.text());
    };
    // The workers' counts reach the registry with their next heartbeat (2 s) and the sampler within a second.
    await expect
      .poll(async () => sampleValue(await scrape(), 'celeriac_tasks_total', { queue, task: 'dash.double', outcome: 'succeeded' }), { timeout: 10_000 })
      .toBe(3);
    const m = await scrape();
    expect(m.types.get('celeriac_tasks_total')).toBe('counter');
    expect(sampleValue(m, 'celeriac_tasks_total', { queue, task: 'dash.flaky', outcome: 'failed' })).toBe(1);
    expect(sampleValue(m, 'celeriac_tasks_total', { queue, task: 'dash.double', outcome: 'failed' })).toBe(0);
    expect(sampleValue(m, 'celeriac_task_retries_total', { queue, task: 'dash.double' })).toBe(0);
    expect(sampleValue(m, 'celeriac_queue_tasks', { queue, state: 'dead' })).toBe(1);
    expect(sampleValue(m, 'celeriac_queue_tasks', { queue, state: 'delayed' })).toBe(1);
    expect(sampleValue(m, 'celeriac_queue_tasks', { queue, state: 'ready' })).toBe(0);
    expect(sampleValue(m, 'celeriac_queue_paused', { queue })).toBe(0);
    expect(sampleValue(m, 'celeriac_workers_online')).toBeGreaterThanOrEqual(1);

    // Four tasks ended (one failed), spread over the seconds they ran in; the series lags a heartbeat.
    const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
    await expect.poll(async () => sum((await summary(url, queue))!.rates.processed), { timeout: 10_000 }).toBeCloseTo(4, 1);
    const rates = (await summary(url, queue))!.rates;
    expect(sum(rates.failed)).toBeCloseTo(1, 1);
    expect(rates.end % 1_000).toBe(0);
    expect(sum((await api<QueuesView>(url, 'api/queues')).body.rates.processed)).toBeGreaterThanOrEqual(sum(rates.processed) - 0.01);
  }, 40_000);
});

describe('dashboard API on RabbitMQ alone (no coordination store)', () => {
  it('lists the queues it was given with counts and dead letters; everything needing control state answers 503 with the fix', async () => {
    const queue = uniqueQueue('dashr');
    const app = createApp({ broker: AMQP_URL, defaultQueue: queue });
    apps.push(app);
    const flaky = app.task('dash.flaky', { input: z.object({ html: z.string() }), retry: { maxAttempts: 1 } }, () => {
      throw new Error('boom');
    });
    const url = await serve(app, { queues: [queue], brokerUrl: 'amqp://guest:secret@127.0.0.1:5672' });
    const info = (await api<Info>(url, 'api/info')).body;
    expect(info).toMatchObject({ control: false, broker: 'amqp://guest:***@127.0.0.1:5672', results: null, tokenRequired: false, refreshMs: 1_000 });
    expect(info.controlHint).toMatch(/redis/i);
    await flaky.enqueue({ html: XSS });
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ queue, ready: 1, paused: false });
    expect((await api<QueuesView>(url, 'api/queues')).body.workersOnline).toBe(0);
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    await expect.poll(async () => (await app.inspect.deadLetters(queue)).length, { timeout: 10_000 }).toBe(1);
    const dead = (await api<DeadLettersView>(url, `api/queues/${queue}/dead`)).body.letters;
    expect(dead).toEqual([expect.objectContaining({ task: 'dash.flaky', payload: { html: XSS }, attempt: 1, error: expect.objectContaining({ message: 'boom' }) })]);
    const view = await api<QueueView>(url, `api/queues/${queue}`);
    expect(view.status).toBe(200);
    expect(view.body.queue).toMatchObject<Partial<QueueDetail>>({ queue, readyTasks: null, delayedTasks: null, running: [] });
    expect(view.body.dead).toHaveLength(1);
    const metrics = parsePrometheus(await (await fetch(new URL('metrics', url))).text());
    await expect.poll(async () => sampleValue(parsePrometheus(await (await fetch(new URL('metrics', url))).text()), 'celeriac_queue_tasks', { queue, state: 'dead' }), { timeout: 5_000 }).toBe(1);
    expect(sampleValue(metrics, 'celeriac_workers_online')).toBe(0);

    const unavailable = { status: 503, body: { error: { code: 'CONTROL_UNAVAILABLE', message: expect.stringMatching(/needs a store shared by every worker.*redis:\/\//) } } };
    expect(await api(url, 'api/workers')).toEqual(unavailable);
    expect(await api(url, 'api/schedules')).toEqual(unavailable);
    expect(await api(url, `api/tasks/${dead[0]!.id}`)).toEqual(unavailable);
    expect(await post(url, `api/tasks/${dead[0]!.id}/revoke`)).toEqual(unavailable);
    expect(await post(url, `api/queues/${queue}/pause`)).toEqual(unavailable);
    expect(await post(url, `api/queues/${queue}/resume`)).toEqual(unavailable);
    // Dead letters live in the broker: redrive works here too.
    expect((await post<{ redriven: string[] }>(url, `api/queues/${queue}/redrive`)).body.redriven).toEqual([dead[0]!.id]);
  }, 30_000);
});
