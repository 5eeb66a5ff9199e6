import { consoleLogger, createApp, type App, type TaskResult } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { serveMetrics, Worker, workerMetrics, type MetricsServer } from '@celeriac/worker';
import { Gauge, Registry } from 'prom-client';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { IDLE_TIMEOUT_MS, REPLY_TIMEOUT_MS } from '../packages/worker/src/metrics-server.js';
import { urlWith } from './redis/helpers.js';
import { controlBackends } from './support/control-backends.js';
import { FaultProxy } from './support/fault-proxy.js';
import { parsePrometheus, sampleValue, type Scrape } from './support/prometheus.js';

// A worker's /metrics, scraped over HTTP and parsed as Prometheus would, and its registry record's
// counts: exact numbers for tasks that succeed, retry, fail to the dead letters and expire.
const { prefix, backends, apps, workers } = controlBackends('metrics');
const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

function open(options: object, queue: string): App {
  const app = createApp({ ...(options as { broker: string }), defaultQueue: queue });
  apps.push(app);
  return app;
}

/** Starts `worker` with its metrics served on a free loopback port; resolves with the scrape function. */
async function served(worker: Worker, app: App, options: Parameters<typeof workerMetrics>[3] = {}) {
  const { registry } = await workerMetrics(worker, app, undefined, options);
  const server = await serveMetrics(registry, { port: 0 });
  servers.push(server);
  return async (): Promise<Scrape> => {
    const res = await fetch(server.url, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await res.text());
  };
}

/** Three tasks: one that succeeds, one that fails its first attempt, one that always fails (two attempts). */
function tasks(app: App) {
  const retry = { maxAttempts: 2, delayMs: 0, jitter: false };
  return {
    ok: app.task('m.ok', { input: z.object({ n: z.number() }) }, ({ n }) => n * 2),
    flaky: app.task('m.flaky', { input: z.object({}), retry }, (_, ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return 'second';
    }),
    doomed: app.task('m.doomed', { input: z.object({ why: z.string() }), retry }, ({ why }) => {
      throw new Error(why);
    }),
  };
}

const ZERO = { succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0 };

describe.each(backends.filter((b) => b.name === 'memory' || b.name === 'redis'))('worker metrics on $name', ({ options }) => {
  it('counts outcomes, retries, dead letters and run times exactly; queue gauges match broker.stats; the registry record has the same counts', async () => {
    const queue = uniqueQueue('met');
    const app = open(options(), queue);
    const { ok, flaky, doomed } = tasks(app);
    const worker = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(worker);
    const scrape = await served(worker, app);
    await worker.start();

    const okHandles = await Promise.all([1, 2, 3].map((n) => ok.enqueue({ n })));
    const expired = await ok.enqueue({ n: 4 }, { expiresAt: Date.now() - 1 });
    await ok.enqueue({ n: 5 }, { delayMs: 600_000 }); // stays delayed
    const f = await flaky.enqueue({});
    const d = await doomed.enqueue({ why: 'no way' });
    await Promise.all([...okHandles.map((h) => h.result({ timeoutMs: 10_000 })), f.result({ timeoutMs: 10_000 })]);
    await expect(d.result({ timeoutMs: 10_000 })).rejects.toThrow(/no way/);
    await expect(expired.result({ timeoutMs: 10_000 })).rejects.toThrow(/expired/);
    await expect.poll(() => worker.taskCounts.reduce((sum, c) => sum + c.succeeded + c.failed + c.expired, 0), { timeout: 10_000 }).toBe(6);

    const s = await scrape();
    expect(s.types.get('celeriac_tasks_total')).toBe('counter');
    expect(s.types.get('celeriac_task_duration_seconds')).toBe('histogram');
    expect(s.types.get('celeriac_queue_tasks')).toBe('gauge');
    const total = (task: string, outcome: string) => sampleValue(s, 'celeriac_tasks_total', { queue, task, outcome });
    expect([total('m.ok', 'succeeded'), total('m.ok', 'expired'), total('m.ok', 'failed'), total('m.flaky', 'succeeded'), total('m.doomed', 'failed'), total('m.doomed', 'succeeded')]).toEqual([3, 1, 0, 1, 1, 0]);
    const retries = (task: string) => sampleValue(s, 'celeriac_task_retries_total', { queue, task });
    expect([retries('m.ok'), retries('m.flaky'), retries('m.doomed')]).toEqual([0, 1, 1]);
    const dead = (task: string) => sampleValue(s, 'celeriac_dead_letters_total', { queue, task });
    expect([dead('m.ok'), dead('m.flaky'), dead('m.doomed')]).toEqual([0, 0, 1]);
    // One observation per handler run: the expired task never ran.
    const runs = (task: string, outcome: string) => sampleValue(s, 'celeriac_task_duration_seconds_count', { queue, task, outcome });
    expect([runs('m.ok', 'succeeded'), runs('m.flaky', 'retried'), runs('m.flaky', 'succeeded'), runs('m.doomed', 'retried'), runs('m.doomed', 'failed')]).toEqual([3, 1, 1, 1, 1]);
    expect(sampleValue(s, 'celeriac_task_duration_seconds_bucket', { queue, task: 'm.ok', outcome: 'succeeded', le: '+Inf' })).toBe(3);
    expect(s.samples.filter((x) => x.name === 'celeriac_task_duration_seconds_count').reduce((sum, x) => sum + x.value, 0)).toBe(7);

    const stats = await (await app.connection()).broker.stats(queue);
    expect(stats).toMatchObject({ ready: 0, delayed: 1, inFlight: 0, dead: 1 });
    const depth = (state: string) => sampleValue(s, 'celeriac_queue_tasks', { queue, state });
    expect({ ready: depth('ready'), delayed: depth('delayed'), inFlight: depth('in_flight'), dead: depth('dead') }).toEqual({ ready: stats.ready, delayed: stats.delayed, inFlight: stats.inFlight, dead: stats.dead });
    expect(sampleValue(s, 'celeriac_queue_paused', { queue })).toBe(0);
    // The dashboard exports workers online; a worker does not read the whole registry per scrape.
    expect(s.types.has('celeriac_workers_online')).toBe(false);
    expect(sampleValue(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // The registry record: the same counts, by queue and task, once the next heartbeat lands.
    const expected = [
      { queue, task: 'm.ok', ...ZERO, succeeded: 3, expired: 1 },
      { queue, task: 'm.flaky', ...ZERO, succeeded: 1, retried: 1 },
      { queue, task: 'm.doomed', ...ZERO, failed: 1, retried: 1 },
    ];
    const record = async () => (await app.inspect.workers()).find((w) => w.id === worker.id);
    await expect.poll(async () => (await record())?.counts, { timeout: 10_000 }).toEqual(expect.arrayContaining(expected));
    expect((await record())!).toMatchObject({ processed: 6, failed: 2 });
    expect((await record())!.counts).toHaveLength(3);

    // Paused as the worker hears it (its next control poll).
    await app.control.pause(queue);
    await expect.poll(async () => sampleValue(await scrape(), 'celeriac_queue_paused', { queue }), { timeout: 10_000 }).toBe(1);
    await app.control.resume(queue);
  });
});

// Every store keeps the record as JSON: memory, Redis (settle and store scripts), Redis Cluster, a
// Redis store behind RabbitMQ, and RabbitMQ's reply queues.
const RECORD_BACKENDS = [...backends, { name: 'amqp', options: () => ({ broker: AMQP_URL }) }];

describe.each(RECORD_BACKENDS)('result records on $name', ({ options }) => {
  it("carry the enqueue and start times and the worker's id into a finished task's record, and the payload of those that did not succeed (keepPayload: 'failures')", async () => {
    const queue = uniqueQueue('mrec');
    const app = open(options(), queue);
    const { ok, doomed } = tasks(app);
    const worker = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(worker);
    const starts = new Map<string, number[]>();
    worker.on('task:started', (ev) => starts.set(ev.message.id, [...(starts.get(ev.message.id) ?? []), Date.now()]));
    await worker.start();
    const before = Date.now();
    const [h, d, e] = [await ok.enqueue({ n: 21 }), await doomed.enqueue({ why: '<img src=x onerror=alert(1)>' }), await ok.enqueue({ n: 1 }, { expiresAt: Date.now() - 1 })];
    expect(await h.result({ timeoutMs: 10_000 })).toBe(42);
    await expect(d.result({ timeoutMs: 10_000 })).rejects.toThrow();
    await expect(e.result({ timeoutMs: 10_000 })).rejects.toThrow(/expired/);
    const { results } = await app.connection();
    const get = async (id: string) => (await results.get({ id, queue }))!;
    const [succeeded, failed, expiredRecord] = [await get(h.id), await get(d.id), await get(e.id)];

    expect(succeeded).toMatchObject({ state: 'succeeded', value: 42, worker: worker.id, attempts: 1, startedAt: expect.any(Number), enqueuedAt: expect.any(Number) });
    expect(succeeded).not.toHaveProperty('payload'); // a success does no extra work by default
    const times = (r: TaskResult) => [r.enqueuedAt!, r.startedAt!, r.finishedAt];
    expect(succeeded.enqueuedAt).toBeGreaterThanOrEqual(before);
    expect(times(succeeded)).toEqual([...times(succeeded)].sort((a, b) => a - b));
    expect(failed).toMatchObject({ state: 'failed', payload: { why: '<img src=x onerror=alert(1)>' }, worker: worker.id, attempts: 2 });
    expect(starts.get(d.id)).toHaveLength(2);
    expect(failed.startedAt).toBeGreaterThanOrEqual(starts.get(d.id)![1]!); // the last attempt's start
    expect(times(failed)).toEqual([...times(failed)].sort((a, b) => a - b));
    // Never ran: no start time, but the worker that settled it.
    expect(expiredRecord).toMatchObject({ state: 'expired', payload: { n: 1 }, worker: worker.id });
    expect(expiredRecord.startedAt).toBeUndefined();
  });
});

describe('worker metrics, degraded', () => {
  it('leave the queue gauges out of a scrape while Redis hangs (said once in the log), and bring them back when it answers', async () => {
    const proxy = await new FaultProxy('redis://127.0.0.1:6379').start();
    const queue = uniqueQueue('mhang');
    const app = createApp({ broker: urlWith(prefix, `redis://127.0.0.1:${proxy.port}/`), defaultQueue: queue });
    const worker = new Worker(app, { queues: [queue], blockMs: 200 });
    try {
      const warnings: string[] = [];
      const scrape = await served(worker, app, { scrapeTimeoutMs: 300, logger: consoleLogger('warn', (line) => warnings.push(line)) });
      await worker.start();
      expect(sampleValue(await scrape(), 'celeriac_queue_tasks', { queue, state: 'ready' })).toBe(0);

      proxy.hold();
      for (let i = 0; i < 2; i++) {
        const s = await scrape(); // answers, without what it could not read
        expect(s.samples.filter((x) => x.name === 'celeriac_queue_tasks')).toEqual([]);
        expect(sampleValue(s, 'celeriac_queue_paused', { queue })).toBe(0);
        expect(s.types.has('celeriac_tasks_total')).toBe(true);
      }
      expect(warnings.filter((w) => w.includes('could not read the queue depths'))).toHaveLength(1);
      proxy.heal();
      await expect.poll(async () => sampleValue(await scrape(), 'celeriac_queue_tasks', { queue, state: 'ready' }), { timeout: 10_000 }).toBe(0);
    } finally {
      proxy.heal();
      await worker.stop({ graceMs: 1_000 });
      await app.close();
      await proxy.close();
    }
  });

  it('counts tasks on RabbitMQ alone (no registry) too', async () => {
    const queue = uniqueQueue('mamqp');
    const app = open({ broker: AMQP_URL }, queue);
    const { ok } = tasks(app);
    const worker = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(worker);
    const scrape = await served(worker, app);
    await worker.start();
    await (await ok.enqueue({ n: 1 })).result({ timeoutMs: 10_000 });
    await expect.poll(async () => sampleValue(await scrape(), 'celeriac_tasks_total', { queue, task: 'm.ok', outcome: 'succeeded' }), { timeout: 10_000 }).toBe(1);
    const s = await scrape();
    expect(s.types.has('celeriac_workers_online')).toBe(false);
    expect(sampleValue(s, 'celeriac_queue_tasks', { queue, state: 'ready' })).toBe(0);
  });
});

describe('worker metrics, closed', () => {
  it('close() removes what it registered (its metrics and the process metrics it added), leaves the rest, and the registry takes a new worker', async () => {
    const queue = uniqueQueue('mclose');
    const app = open({ broker: `memory://metrics-${queue}` }, queue);
    const registry = new Registry();
    const mine = new Gauge({ name: 'app_own_gauge', help: 'not celeriac', registers: [registry] });
    const worker = new Worker(app, { queues: [queue] });
    const first = await workerMetrics(worker, app, registry);
    expect(registry.getSingleMetric('celeriac_tasks_total')).toBeDefined();
    expect(registry.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    first.close();
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['app_own_gauge']);
    const second = await workerMetrics(new Worker(app, { queues: [queue] }), app, registry);
    expect(parsePrometheus(await registry.metrics()).types.has('celeriac_tasks_total')).toBe(true);
    second.close();
    expect(registry.getSingleMetric('app_own_gauge')).toBe(mine);
  });
});

describe('the metrics server', () => {
  it('refuses an address other than loopback without a token, naming the flag and the variable', async () => {
    await expect(serveMetrics(new Registry(), { host: '0.0.0.0', port: 0 })).rejects.toThrow(/refusing to listen on 0\.0\.0\.0 without a token.*--metrics-token <secret> or CELERIAC_METRICS_TOKEN/);
  });

  it('with a token: 401 without the Bearer header or with a wrong one, 200 with it; 404 and 405 elsewhere, as JSON', async () => {
    const registry = new Registry();
    const server = await serveMetrics(registry, { port: 0, token: 's3cret' });
    servers.push(server);
    const get = (headers: Record<string, string> = {}, url = server.url, method = 'GET') => fetch(url, { headers, method, signal: AbortSignal.timeout(10_000) });
    const denied = await get();
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await get({ authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await get({ authorization: 'Bearer s3cret' });
    expect(ok.status).toBe(200);
    expect(parsePrometheus(await ok.text()).samples).toEqual([]);
    const auth = { authorization: 'Bearer s3cret' };
    const missing = await get(auth, server.url.replace('/metrics', '/other'));
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect((await get(auth, server.url, 'POST')).status).toBe(405);
  });

  it('ends a connection that stays silent, or sends half a request, within a few seconds', async () => {
    const server = await serveMetrics(new Registry(), { port: 0 });
    servers.push(server);
    const { hostname, port } = new URL(server.url);
    const hold = async (partial: boolean) => {
      const socket = connect(Number(port), hostname);
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      if (partial) socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // the headers never end
      return socket;
    };
    const sockets = [await hold(false), await hold(true)];
    try {
      // Ended after IDLE_TIMEOUT_MS (5 s) and the next deadline check; Node's default left them 30 s.
      const closed = (socket: ReturnType<typeof connect>) => new Promise<'closed'>((resolve) => socket.once('close', () => resolve('closed')));
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'held'>((resolve) => (timer = setTimeout(() => resolve('held'), 15_000)));
      await expect(Promise.all(sockets.map((s) => Promise.race([closed(s), bound])))).resolves.toEqual(['closed', 'closed']);
      clearTimeout(timer);
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 30_000);

  it('answers an authorised scrape while 40 connections without a token are held open', async () => {
    const server = await serveMetrics(new Registry(), { port: 0, token: 's3cret' });
    servers.push(server);
    const { hostname, port } = new URL(server.url);
    const held = await Promise.all(
      Array.from({ length: 40 }, () => {
        const socket = connect(Number(port), hostname);
        socket.on('error', () => {});
        return new Promise<typeof socket>((resolve) => socket.once('connect', () => resolve(socket)));
      }),
    );
    try {
      const res = await fetch(server.url, { headers: { authorization: 'Bearer s3cret' }, signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  it('does not end a connection whose scrape takes longer than the idle timeout', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'slow_gauge',
      help: 'collects slowly',
      registers: [registry],
      async collect() {
        await new Promise((r) => setTimeout(r, IDLE_TIMEOUT_MS + 1_500));
        this.set(1);
      },
    });
    const server = await serveMetrics(registry, { port: 0 });
    servers.push(server);
    const res = await fetch(server.url, { signal: AbortSignal.timeout(20_000) });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('slow_gauge 1');
  }, 30_000);

  // Issue 11: the idle timeout spares a socket being answered, and once the socket buffers are
  // full nothing moves on it, so a client that asked and never read held its socket for ever.
  it('cuts off a client that sends a request and never reads the reply, REPLY_TIMEOUT_MS after the reply started', async () => {
    const registry = new Registry();
    const wide = new Gauge({ name: 'wide_gauge', help: 'many long series', labelNames: ['key'], registers: [registry] });
    const pad = 'x'.repeat(1_000);
    // About 8 MB: more than the loopback socket buffers of both ends take (4 MB + 128 KB here).
    for (let i = 0; i < 8_000; i++) wide.set({ key: `${i}-${pad}` }, i);
    const whole = Buffer.byteLength(await registry.metrics());
    const server = await serveMetrics(registry, { port: 0 });
    servers.push(server);
    // The server's end of the connection, whose close is what the test waits for (the client reads nothing, so sees nothing).
    let onSocket: (message: unknown) => void = () => {};
    const accepted = new Promise<Socket>((resolve) => (onSocket = (message) => resolve((message as { socket: Socket }).socket)));
    subscribe('net.server.socket', onSocket);
    const { hostname, port } = new URL(server.url);
    const client = connect(Number(port), hostname);
    client.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve) => client.once('connect', resolve));
      client.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const serverEnd = await accepted;
      const closed = new Promise<'closed'>((resolve) => serverEnd.once('close', () => resolve('closed')));
      const bound = new Promise<'held'>((resolve) => (timer = setTimeout(() => resolve('held'), REPLY_TIMEOUT_MS + 20_000)));
      expect(await Promise.race([closed, bound])).toBe('closed');
      // Cut off, not finished: reading now gets what the socket buffers held, then the end.
      let received = 0;
      client.on('data', (chunk: Buffer) => (received += chunk.length));
      const ended = new Promise<'ended'>((resolve) => client.once('close', () => resolve('ended')));
      expect(await Promise.race([ended, bound])).toBe('ended');
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(whole);
    } finally {
      clearTimeout(timer);
      unsubscribe('net.server.socket', onSocket);
      client.destroy();
    }
  }, REPLY_TIMEOUT_MS + 30_000);

  it('close() ends even while a client holds a half-sent request open', async () => {
    const server = await serveMetrics(new Registry(), { port: 0 });
    const { hostname, port } = new URL(server.url);
    const socket = connect(Number(port), hostname);
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // no blank line: the headers never end
      await new Promise((r) => setTimeout(r, 100)); // the server has the connection
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 5_000)));
      await expect(Promise.race([server.close().then(() => 'closed' as const), bound])).resolves.toBe('closed');
      clearTimeout(timer);
      await ended; // the server ended the half-sent request's connection
    } finally {
      socket.destroy();
    }
  });
});
