import { createApp, TaskFailedError, type App } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL, canControlRabbit, killConnection } from '../../packages/amqp-backend/src/testing.js';
import type { AmqpBroker } from '@celeriac/amqp-backend';

// The same Worker and tasks as every backend, switched to RabbitMQ by the URL alone.
describe('amqp: end to end with the Worker', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
  });

  function app(queue: string): App {
    const a = createApp({ broker: AMQP_URL, defaultQueue: queue });
    cleanup.push(async () => {
      const { broker } = await a.connection();
      const names = (broker as AmqpBroker).declaredQueues;
      await a.close();
      // Leave nothing behind on the shared server.
      const admin = createApp({ broker: AMQP_URL });
      const b = (await admin.connection()).broker as AmqpBroker;
      await b.link.withChannel(async (ch) => {
        for (const n of names) await ch.deleteQueue(n).catch(() => {});
      });
      await admin.close();
    });
    return a;
  }

  function worker(a: App, options: ConstructorParameters<typeof Worker>[1]): Worker {
    const w = new Worker(a, options);
    cleanup.push(() => w.stop());
    return w;
  }

  it('runs tasks published by one process in a worker of another, results coming back over AMQP', async () => {
    const queue = uniqueQueue('aw');
    const producer = app(queue);
    const consumer = app(queue);
    const define = (a: App) => a.task('math.add', { input: z.object({ a: z.number(), b: z.number() }) }, ({ a: x, b }) => x + b);
    const add = define(producer);
    define(consumer);
    await worker(consumer, { queues: [queue], concurrency: 8 }).start();
    const handles = await add.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ payload: { a: i, b: 1 } })));
    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 10_000 })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('retries through the delay ladder and dead-letters when attempts run out', async () => {
    const queue = uniqueQueue('aw');
    const a = app(queue);
    const flaky = a.task('flaky', { input: z.object({}), retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 150, jitter: false } }, (_, ctx) => {
      if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt}`);
      return ctx.attempt;
    });
    const doomed = a.task('doomed', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 50 } }, () => {
      throw new Error('always');
    });
    await worker(a, { queues: [queue], concurrency: 4 }).start();
    const [h1, h2] = [await flaky.enqueue({}), await doomed.enqueue({})];
    expect(await h1.result({ timeoutMs: 10_000 })).toBe(3);
    await expect(h2.result({ timeoutMs: 10_000 })).rejects.toBeInstanceOf(TaskFailedError);
    const { broker } = await a.connection();
    const dead = await broker.deadLetters(queue);
    expect(dead.map((d) => d.reason)).toEqual(['failed after 2 attempt(s): always']);
  });

  it.skipIf(!canControlRabbit)('finishes every task when the worker’s connection is killed mid-run (redelivered, results still delivered)', async () => {
    const queue = uniqueQueue('aw');
    const a = app(queue);
    const seen = new Map<number, number>();
    const job = a.task('job', { input: z.object({ n: z.number() }) }, async ({ n }) => {
      await sleep(50);
      seen.set(n, (seen.get(n) ?? 0) + 1);
      return n;
    });
    const w = worker(a, { queues: [queue], concurrency: 5, leaseMs: 5_000 });
    await w.start();
    const handles = await job.enqueueMany(Array.from({ length: 40 }, (_, n) => ({ payload: { n }, options: { idempotencyKey: `job-${n}` } })));
    await sleep(150);
    const { broker } = await a.connection();
    expect(await killConnection((broker as AmqpBroker).link.name)).toBe(1);
    const values = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(values).toEqual(Array.from({ length: 40 }, (_, n) => n));
    // Handlers that were running when the connection died may run again (at-least-once), but
    // every task finished, and stats add up.
    expect(seen.size).toBe(40);
    const stats = await broker.stats(queue);
    expect(stats).toMatchObject({ ready: 0, inFlight: 0, dead: 0 });
  }, 30_000);
});
