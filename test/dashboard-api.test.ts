import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type App, type QueueDetail } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { createDashboard, serveDashboard, type DeadLettersView, type Info, type QueuesView, type QueueView, type SchedulesView, type TaskView, type WorkersView } from '@celeriac/dashboard';
import { Scheduler, Worker } from '@celeriac/worker';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';
import { controlBackends } from './support/control-backends.js';
import { FaultProxy } from './support/fault-proxy.js';
import { parsePrometheus, sampleValue } from './support/prometheus.js';

// The dashboard's JSON API and /metrics over real HTTP, on every broker that keeps control state
// and on RabbitMQ alone (degraded): what a page or a script sees after enqueues, runs, failures
// and each action, with each action's effect checked through app.inspect.
const { backends, apps, workers } = controlBackends('dash');
const served: { close(): Promise<void> }[] = [];
const proxies: FaultProxy[] = [];
const faultPrefix = uniquePrefix('dashf');
afterEach(async () => {
  for (const s of served.splice(0)) await s.close();
  for (const p of proxies.splice(0)) await p.close();
});
afterAll(() => removePrefix(faultPrefix));

const XSS = '<img src=x onerror=alert(1)>';

async function api<T>(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(new URL(path, url), init);
  return { status: res.status, body: (await res.json()) as T };
}

function post<T>(url: string, path: string, body: unknown = {}) {
  return api<T>(url, path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function serve(app: App, options: Parameters<typeof serveDashboard>[1] = {}) {
  const s = await serveDashboard(app, { port: 0, ...options });
  served.push(s);
  return s.url;
}

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

const summary = async (url: string, queue: string) => (await api<QueuesView>(url, 'api/queues')).body.queues.find((q) => q.queue === queue);

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
    expect(done).toMatchObject({ state: 'succeeded', result: 42, payload: { n: 21 } });
    expect(await api(url, 'api/tasks/no-such-task')).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.stringContaining('no-such-task not found') } } });

    const dead = (await api<DeadLettersView>(url, `api/queues/${queue}/dead`)).body;
    expect(dead.queue).toBe(queue);
    const letter = dead.letters.find((l) => l.id === bad!.id);
    expect(letter).toMatchObject({ id: bad!.id, task: 'dash.flaky', payload: { html: XSS }, attempt: 1, reason: expect.stringContaining(`boom ${XSS}`) });
    // RabbitMQ with a store apart buries the letter without its error (the task page has it): a gap in core's settlement, reported.
    if (name !== 'amqp+redis') expect(letter?.error).toMatchObject({ message: `boom ${XSS}` });
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

/** A request with any headers (fetch will not send a forged Host). */
function raw(url: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const u = new URL(path, url);
  return new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const errorCode = (text: string) => (JSON.parse(text) as { error: { code: string } }).error.code;

describe('dashboard HTTP rules', () => {
  function memoryApp() {
    const queue = uniqueQueue('dashs');
    const app = createApp({ broker: `memory://${queue}`, defaultQueue: queue });
    apps.push(app);
    return { app, queue };
  }

  it('with a token, /api and /metrics need Authorization: Bearer <token>; the pages load without it (they ask for it)', async () => {
    const { app } = memoryApp();
    const url = await serve(app, { token: 's3cret' });
    for (const path of ['api/info', 'api/queues', 'metrics', 'api/nope']) {
      const none = await raw(url, path);
      expect([path, none.status, errorCode(none.text)]).toEqual([path, 401, 'UNAUTHORIZED']);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await raw(url, path, { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await raw(url, path, { headers: { Authorization: 's3cret' } })).status).toBe(401);
    }
    const ok = await raw(url, 'api/info', { headers: { Authorization: 'Bearer s3cret' } });
    expect([ok.status, (JSON.parse(ok.text) as Info).tokenRequired]).toEqual([200, true]);
    expect((await raw(url, 'metrics', { headers: { Authorization: 'Bearer s3cret' } })).status).toBe(200);
    expect((await raw(url, 'tasks/abc')).status).toBe(200);
    expect((await raw(url, 'assets/app.js')).status).toBe(200);
    // A token makes the host rule moot: the name a proxy or Prometheus uses is fine.
    expect((await raw(url, 'api/info', { headers: { Authorization: 'Bearer s3cret', Host: 'dashboard.example.com' } })).status).toBe(200);
  });

  it('refuses a non-loopback host without a token, naming --token and CELERIAC_DASHBOARD_TOKEN', async () => {
    const { app } = memoryApp();
    for (const host of ['0.0.0.0', '192.0.2.1', 'example.com']) {
      await expect(serveDashboard(app, { host, port: 0 })).rejects.toThrow(/refusing to listen on .* without a token.*--token.*CELERIAC_DASHBOARD_TOKEN/);
    }
  });

  it('without a token, a request naming another host is refused (DNS rebinding); loopback names and allowed hosts are served', async () => {
    const { app } = memoryApp();
    const url = await serve(app);
    const port = new URL(url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost']) expect([host, (await raw(url, 'api/info', { headers: { Host: host } })).status]).toEqual([host, 200]);
    for (const path of ['api/info', 'metrics', '', 'assets/app.js']) {
      const res = await raw(url, path, { headers: { Host: `attacker.example:${port}` } });
      expect([path, res.status, errorCode(res.text)]).toEqual([path, 403, 'FORBIDDEN']);
    }
    const allowing = await serve(app, { allowedHosts: ['ops.internal'] });
    expect((await raw(allowing, 'api/info', { headers: { Host: 'ops.internal:8080' } })).status).toBe(200);
    expect((await raw(allowing, 'api/info', { headers: { Host: 'attacker.example' } })).status).toBe(403);
  });

  it('actions are POSTs of JSON from this origin only, with bodies up to 64 KiB; nothing happens otherwise', async () => {
    const { app, queue } = memoryApp();
    const url = await serve(app);
    const json = { 'Content-Type': 'application/json' };
    const pause = `api/queues/${queue}/pause`;
    const get = await raw(url, pause);
    expect([get.status, get.headers.allow, errorCode(get.text)]).toEqual([405, 'POST', 'METHOD_NOT_ALLOWED']);
    const wrongWay = await raw(url, 'api/queues', { method: 'POST', headers: json, body: '{}' });
    expect([wrongWay.status, wrongWay.headers.allow]).toEqual([405, 'GET']);
    expect((await raw(url, 'queues/x', { method: 'POST', headers: json, body: '{}' })).status).toBe(405);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(url, pause, { method: 'POST', headers: { 'Content-Type': type }, body: '{}' });
      expect([type, res.status, errorCode(res.text)]).toEqual([type, 415, 'UNSUPPORTED_MEDIA_TYPE']);
    }
    expect((await raw(url, pause, { method: 'POST' })).status).toBe(415);
    const port = new URL(url).port;
    for (const origin of ['http://attacker.example', `http://attacker.example:${port}`, 'null']) {
      const res = await raw(url, pause, { method: 'POST', headers: { ...json, Origin: origin }, body: '{}' });
      expect([origin, res.status, errorCode(res.text)]).toEqual([origin, 403, 'FORBIDDEN']);
    }
    const big = await raw(url, `api/queues/${queue}/redrive`, { method: 'POST', headers: json, body: JSON.stringify({ ids: ['x'.repeat(70 * 1024)] }) });
    expect([big.status, errorCode(big.text)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(await app.control.paused()).not.toContain(queue);
    const same = await raw(url, pause, { method: 'POST', headers: { ...json, Origin: `http://127.0.0.1:${port}` }, body: '' });
    expect([same.status, JSON.parse(same.text)]).toEqual([200, { queue, paused: true }]);
    expect(await app.control.paused()).toContain(queue);
  });

  it('bad input is a 400 naming the problem; an unknown endpoint a 404; every error is JSON', async () => {
    const { app, queue } = memoryApp();
    const url = await serve(app);
    const cases: [string, string, object | undefined, number, string][] = [
      ['GET', `api/queues/${queue}/dead?limit=0`, undefined, 400, 'BAD_REQUEST'],
      ['GET', `api/queues/${queue}/dead?limit=10001`, undefined, 400, 'BAD_REQUEST'],
      ['GET', 'api/queues/bad%20name/dead', undefined, 400, 'INVALID_NAME'],
      ['GET', 'api/queues/%E0%A4%A', undefined, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/discard`, {}, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/discard`, { ids: [] }, 400, 'BAD_REQUEST'],
      ['POST', `api/queues/${queue}/redrive`, { ids: 'x' }, 400, 'BAD_REQUEST'],
      ['POST', 'api/tasks/t1/revoke', { terminate: 'yes' }, 400, 'BAD_REQUEST'],
      ['GET', 'api/tasks/bad%20id', undefined, 400, 'INVALID_NAME'],
      ['GET', 'api/queue', undefined, 404, 'NOT_FOUND'],
      ['GET', 'api/queues/a/b/c', undefined, 404, 'NOT_FOUND'],
      ['GET', 'assets/nope.js', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await raw(url, path, { method, headers: { 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect([method, path, res.status, res.headers['content-type'], errorCode(res.text)]).toEqual([method, path, status, 'application/json; charset=utf-8', code]);
    }
    const notJson = await raw(url, `api/queues/${queue}/pause`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{nope' });
    expect([notJson.status, errorCode(notJson.text)]).toEqual([400, 'BAD_REQUEST']);
    expect(await app.control.paused()).not.toContain(queue);
  });

  it('every answer carries the security headers; the page is not cached and the API is not either', async () => {
    const { app } = memoryApp();
    const url = await serve(app);
    const csp = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
    for (const path of ['', 'queues/x', 'api/info', 'api/nope', 'metrics', 'assets/app.js']) {
      const res = await raw(url, path);
      expect([path, res.headers['content-security-policy'], res.headers['x-content-type-options'], res.headers['referrer-policy']]).toEqual([path, csp, 'nosniff', 'no-referrer']);
    }
    expect((await raw(url, 'tasks/1')).headers['cache-control']).toBe('no-store');
    expect((await raw(url, 'api/info')).headers['cache-control']).toBe('no-store');
    const asset = await raw(url, 'assets/app.js');
    expect(asset.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect((await raw(url, 'assets/app.js', { headers: { 'If-None-Match': asset.headers.etag! } })).status).toBe(304);
    expect((await raw(url, 'assets/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('mounted under a prefix (Express strips it from req.url, keeps it in originalUrl): pages get <base href> of the mount, API and assets answer there', async () => {
    const { app, queue } = memoryApp();
    const dashboard = createDashboard(app, { queues: [queue] });
    const raw404 = { close: () => dashboard.close() };
    served.push(raw404);
    const server = createServer(async (req, res) => {
      const mount = '/admin/queues';
      if (req.url === mount || req.url!.startsWith(`${mount}/`)) {
        Object.assign(req, { originalUrl: req.url, url: req.url!.slice(mount.length) || '/' });
        // As express.json() in front of the mount: the body is read and parsed before the handler runs.
        if (req.headers['content-type'] === 'application/json') {
          let text = '';
          for await (const chunk of req) text += String(chunk);
          Object.assign(req, { body: JSON.parse(text) as unknown });
        }
        return dashboard.handler(req, res);
      }
      res.writeHead(404).end('not the dashboard');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    served.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    for (const path of ['admin/queues', 'admin/queues/', `admin/queues/queues/${queue}`, 'admin/queues/tasks/abc?x=1']) {
      const page = await raw(url, path);
      expect([path, page.status, page.headers['content-type']]).toEqual([path, 200, 'text/html; charset=utf-8']);
      expect(page.text).toContain('<base href="/admin/queues/">');
    }
    expect(JSON.parse((await raw(url, 'admin/queues/api/queues')).text)).toMatchObject({ queues: [expect.objectContaining({ queue })] });
    expect((await raw(url, 'admin/queues/assets/app.js')).status).toBe(200);
    const discard = await raw(url, `admin/queues/api/queues/${queue}/discard`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ids: ['gone'] }) });
    expect([discard.status, JSON.parse(discard.text)]).toEqual([200, { queue, discarded: 0 }]);
    expect((await raw(url, 'api/queues')).status).toBe(404);

    // A basePath given outright: taken off req.url when the server did not strip it, and HTML-escaped in the page.
    const odd = createDashboard(app, { basePath: '/ops/"q"/' });
    served.push({ close: () => odd.close() });
    const plain = createServer(odd.handler);
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    served.push({ close: () => new Promise<void>((resolve) => plain.close(() => resolve())) });
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/`;
    expect((await raw(plainUrl, 'ops/%22q%22/tasks/1')).text).toContain('<base href="/ops/&#34;q&#34;/">');
    expect((await raw(plainUrl, 'ops/"q"/api/info')).status).toBe(200);
    expect(() => createDashboard(app, { basePath: 'no-slash' })).toThrow(/basePath must be a path/);
    expect(() => createDashboard(app, { refreshMs: 10 })).toThrow(/refreshMs must be at least 1000/);
    expect(() => createDashboard(app, { queues: ['bad name'] })).toThrow(/queues\.0/);
  });

  it('a broker that does not answer: 503 within the read bound, with the reason; the last good snapshot comes back once it answers', async () => {
    const proxy = await new FaultProxy(REDIS_URL).start();
    proxies.push(proxy);
    const queue = uniqueQueue('dashf');
    const app = createApp({ broker: urlWith(faultPrefix, `redis://127.0.0.1:${proxy.port}`), defaultQueue: queue });
    apps.push(app);
    await app.task('dash.noop', { input: z.object({}) }, () => 1).enqueue({});
    const url = await serve(app);
    await expect.poll(() => summary(url, queue), { timeout: 5_000 }).toMatchObject({ ready: 1 });
    proxy.hold();
    await expect.poll(async () => (await api(url, 'api/queues')).status, { timeout: 8_000 }).toBe(503);
    const down = await api<{ error: { code: string; message: string } }>(url, 'api/queues');
    expect(down.body.error).toEqual({ code: 'UNAVAILABLE', message: expect.stringMatching(/cannot be read: no answer from the broker or store within 2 s/) });
    expect((await raw(url, 'metrics')).status).toBe(503);
    proxy.heal();
    await expect.poll(async () => (await api(url, 'api/queues')).status, { timeout: 8_000 }).toBe(200);
    expect(await summary(url, queue)).toMatchObject({ ready: 1 });
  }, 30_000);
});
