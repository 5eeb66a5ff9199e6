import { createApp, LeaseLostError, type App } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FaultProxy } from '../support/fault-proxy.js';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';

const LEASE = 1_500;

describe('redis: a worker cut off by a silent partition', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('aborts its keyed task before another worker can start it: never two runs of one key at once', async () => {
    const prefix = uniquePrefix('part');
    const queue = uniqueQueue('part');
    const proxy = await new FaultProxy(REDIS_URL).start();
    cleanup.push(() => removePrefix(prefix), () => proxy.close());
    const events: { who: string; what: 'start' | 'abort' | 'end'; at: number; reason?: unknown }[] = [];
    let running = 0;
    let mostAtOnce = 0;
    const open = (url: string, who: string): App => {
      const app = createApp({ broker: url, defaultQueue: queue });
      cleanup.push(() => app.close());
      app.task('pay', { input: z.object({}) }, (_, ctx) => {
        events.push({ who, what: 'start', at: Date.now() });
        mostAtOnce = Math.max(mostAtOnce, ++running);
        const signal = ctx.signal;
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            running--;
            events.push({ who, what: 'end', at: Date.now() });
            resolve(`paid by ${who}`);
          }, 2 * LEASE);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            running--;
            events.push({ who, what: 'abort', at: Date.now(), reason: signal.reason });
            reject(signal.reason);
          });
        });
      });
      return app;
    };
    const appA = open(urlWith(prefix, `redis://127.0.0.1:${proxy.port}`), 'A');
    const appB = open(urlWith(prefix), 'B');
    const workerA = new Worker(appA, { concurrency: 1, leaseMs: LEASE, blockMs: 200 });
    cleanup.push(async () => {
      proxy.heal();
      await workerA.stop({ graceMs: 0 });
    });
    await workerA.start();
    const handle = await appB.getTask('pay')!.enqueue({}, { idempotencyKey: 'order-1' });
    while (!events.some((e) => e.who === 'A' && e.what === 'start')) await sleep(10);

    proxy.hold(); // A can no longer renew its lease or its key claim, and hears no error
    const workerB = new Worker(appB, { concurrency: 1, leaseMs: LEASE, blockMs: 200 });
    cleanup.push(() => workerB.stop({ graceMs: 0 }));
    await workerB.start();
    expect(await handle.result({ timeoutMs: 20_000 })).toBe('paid by B');

    const abortA = events.find((e) => e.who === 'A' && e.what === 'abort');
    const startB = events.find((e) => e.who === 'B' && e.what === 'start');
    expect(abortA?.reason).toBeInstanceOf(LeaseLostError);
    expect(abortA!.at).toBeLessThan(startB!.at);
    expect(mostAtOnce).toBe(1);
  });

  it('rejects an enqueue within enqueueTimeoutMs when Redis does not answer', async () => {
    const prefix = uniquePrefix('part');
    const proxy = await new FaultProxy(REDIS_URL).start();
    cleanup.push(() => removePrefix(prefix), () => proxy.close());
    const app = createApp({ broker: urlWith(prefix, `redis://127.0.0.1:${proxy.port}`), enqueueTimeoutMs: 1_000 });
    cleanup.push(async () => {
      proxy.heal();
      await app.close();
    });
    const t = app.task('t', { input: z.object({}) }, () => 1);
    await t.enqueue({}); // connected
    proxy.hold(); // silent: Redis never hears the enqueue
    const started = Date.now();
    // The producer gives up at enqueueTimeoutMs (passed as publishTimeoutMs), saying it is never sent later.
    await expect(t.enqueue({})).rejects.toThrow(/Redis did not answer within 1000 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
