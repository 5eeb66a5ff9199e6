import { connect, createServer, type Server, type Socket } from 'node:net';
import { createApp, type App } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import type { AmqpBroker } from '@celeriac/amqp-backend';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from '../redis/helpers.js';

/** A TCP proxy in front of RabbitMQ that can play "down": every connection cut, new ones refused. */
class DownProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  down = false;
  port = 0;

  constructor() {
    this.#server = createServer((client) => {
      if (this.down) return client.destroy();
      const upstream = connect({ host: '127.0.0.1', port: 5672 });
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) from.on('data', (chunk) => to.write(chunk));
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  goDown(): void {
    this.down = true;
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.goDown();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

// RabbitMQ dedups per process, so with a shared (Redis) store the producer reserves the key there
// before publishing. A publish that fails must give the key back, or every later enqueue with the
// key is told "duplicate" of a task that was never published (its result never comes, for 24 h).
describe('amqp broker + redis store: a keyed publish that fails gives its key back', () => {
  const prefix = uniquePrefix('unres');
  const apps: App[] = [];
  let proxy: DownProxy | undefined;
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
    proxy = await new DownProxy().start();
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

    proxy.goDown();
    await sleep(200);
    // The publisher gives up at enqueueTimeoutMs and says whether it was sent.
    await expect(pay.enqueue({}, { idempotencyKey: 'order-42' })).rejects.toThrow(/could not publish|enqueue/);
    proxy.down = false;

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
