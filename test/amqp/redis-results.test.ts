import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import type { AmqpBroker } from '@celeriac/amqp-backend';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';

const REDIS_URL = process.env.CELERIAC_REDIS_URL ?? 'redis://127.0.0.1:6379';

// Broker RabbitMQ, results in Redis: what a deployment with several producers and workers uses,
// since AMQP reply queues only reach the process that published the task.
describe('amqp broker + redis result store', () => {
  const apps: App[] = [];
  const workers: Worker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    for (const a of apps.splice(0)) {
      const names = ((await a.connection()).broker as AmqpBroker).declaredQueues;
      const { broker } = await a.connection();
      await (broker as AmqpBroker).link.withChannel(async (ch) => {
        for (const n of names) await ch.deleteQueue(n).catch(() => {});
      });
      await a.close();
    }
  });

  function app(queue: string, replies = true): App {
    const a = createApp({ broker: `${AMQP_URL}?replies=${replies}`, results: REDIS_URL, defaultQueue: queue });
    apps.push(a);
    return a;
  }

  it('a result stored in Redis is seen by any process, and keyed tasks run once across workers', async () => {
    const queue = uniqueQueue('ar');
    let runs = 0;
    const define = (a: App) => a.task('charge', { input: z.object({ cents: z.number() }) }, ({ cents }) => ({ cents, run: ++runs }));
    const producer = app(queue, false);
    const charge = define(producer);
    for (const a of [app(queue), app(queue)]) {
      define(a);
      const w = new Worker(a, { queues: [queue], concurrency: 4 });
      workers.push(w);
      await w.start();
    }
    const first = await charge.enqueue({ cents: 500 }, { idempotencyKey: `order-${queue}` });
    expect(await first.result({ timeoutMs: 10_000 })).toEqual({ cents: 500, run: 1 });
    // Another process (a fresh app on the same stores) reads the same result from Redis.
    const reader = app(queue, false);
    expect(await define(reader).handle(first.id).result({ timeoutMs: 5_000 })).toEqual({ cents: 500, run: 1 });
    // A second enqueue with the same key from another producer is not caught at publish (AMQP has
    // no shared table), but the worker's claim in Redis sees the stored success and does not rerun.
    const again = await define(app(queue, false)).enqueue({ cents: 500 }, { idempotencyKey: `order-${queue}` });
    expect(await again.result({ timeoutMs: 10_000 })).toEqual({ cents: 500, run: 1 });
    expect(runs).toBe(1);
  });
});
