import { createApp, type App } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import type { AmqpBroker } from '@celeriac/amqp-backend';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from '../redis/helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

// RabbitMQ dedups per process, so with a shared (Redis) store the producer reserves the key there
// before publishing. A publish that fails must give the key back, or every later enqueue with the
// key is told "duplicate" of a task that was never published (its result never comes, for 24 h).
describe('amqp broker + redis store: a keyed publish that fails gives its key back', () => {
  const prefix = uniquePrefix('unres');
  const apps: App[] = [];
  let proxy: FaultProxy | undefined;
  let worker: Worker | undefined;
  afterAll(async () => {
    await worker?.stop({ graceMs: 0 });
    const queues = new Set<string>();
    for (const a of apps) for (const n of ((await a.connection()).broker as AmqpBroker).declaredQueues) queues.add(n);
    const last = apps.at(-1);
    if (last) {
      const broker = (await last.connection()).broker as AmqpBroker;
      await broker.link.withChannel(async (ch) => {
        for (const n of queues) await ch.deleteQueue(n).catch(() => {});
      });
    }
    await proxy?.close();
    await Promise.race([Promise.all(apps.map((a) => a.close())), sleep(5_000)]);
    await removePrefix(prefix);
  });

  it('an enqueue that timed out while RabbitMQ was down can be retried with the same key, and runs once', async () => {
    proxy = await new FaultProxy(5672).start();
    const queue = uniqueQueue('unres');
    const producer = createApp({ broker: `amqp://guest:guest@127.0.0.1:${proxy.port}`, results: urlWith(prefix), defaultQueue: queue, enqueueTimeoutMs: 1_000 });
    const workerApp = createApp({ broker: 'amqp://guest:guest@127.0.0.1:5672', results: urlWith(prefix), defaultQueue: queue });
    apps.push(producer, workerApp);
    let runs = 0;
    for (const a of [producer, workerApp]) a.task('pay', { input: z.object({}) }, () => ++runs);
    const pay = producer.getTask('pay')!;
    await (await pay.enqueue({})).result({ timeoutMs: 10_000 }).catch(() => {}); // connected, queue declared
    worker = new Worker(workerApp, { concurrency: 1, leaseMs: 2_000, blockMs: 200 });
    await worker.start();
    await sleep(500); // the first (unkeyed) task runs
    const before = runs;

    proxy.refuse(); // RabbitMQ "down": every connection cut, new ones refused
    proxy.cut();
    await sleep(200);
    // The publisher gives up at enqueueTimeoutMs and says whether it was sent.
    await expect(pay.enqueue({}, { idempotencyKey: 'order-42' })).rejects.toThrow(/could not publish|enqueue/);
    proxy.heal();

    // The retry the error message invites: a new task under the key, published and run.
    const again = await (async () => {
      for (const until = Date.now() + 15_000; ; await sleep(200)) {
        try {
          return await pay.enqueue({}, { idempotencyKey: 'order-42' });
        } catch (err) {
          if (Date.now() > until) throw err; // the producer is still reconnecting
        }
      }
    })();
    expect(again.duplicate).toBe(false);
    expect(await again.result({ timeoutMs: 10_000 })).toBe(before + 1);
    // And the key now holds: a third enqueue is a duplicate of the task that ran.
    const third = await pay.enqueue({}, { idempotencyKey: 'order-42' });
    expect(third).toMatchObject({ id: again.id, duplicate: true });
    expect(runs).toBe(before + 1);
  }, 60_000);
});
