import { createApp, type App } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

// Redis broker, results in another Redis store (so the store is apart from the broker and a task
// claim fences it). Worker A's link to the STORE goes silent while its broker link stays fine: its
// claim call must not hold the task (whose broker lease A keeps renewing) forever.
describe('a silent result store does not hold a task forever', () => {
  const bp = uniquePrefix('stallb');
  const rp = uniquePrefix('stallr');
  const apps: App[] = [];
  const workers: Worker[] = [];
  let proxy: FaultProxy | undefined;
  afterAll(async () => {
    proxy?.heal();
    await Promise.race([Promise.all(workers.map((w) => w.stop({ graceMs: 0 }))), sleep(10_000)]);
    await Promise.race([Promise.all(apps.map((a) => a.close())), sleep(5_000)]);
    await proxy?.close();
    await removePrefix(bp);
    await removePrefix(rp);
  });

  it('the stalled worker gives the delivery back within leaseMs; another worker runs it; stop() ends', async () => {
    proxy = await new FaultProxy(6379).start();
    const queue = uniqueQueue('stall');
    const ran: string[] = [];
    const open = (who: string, storeUrl: string) => {
      const app = createApp({ broker: urlWith(bp), results: storeUrl, defaultQueue: queue });
      app.task('t', { input: z.object({}) }, () => {
        ran.push(who);
        return who;
      });
      apps.push(app);
      return app;
    };
    const appA = open('A', urlWith(rp, `redis://127.0.0.1:${proxy.port}`));
    const appB = open('B', urlWith(rp));
    const workerA = new Worker(appA, { concurrency: 1, leaseMs: 1_500, blockMs: 200 });
    workers.push(workerA);
    await workerA.start();
    await (await appA.connection()).results.get({ id: 'warm-up', queue }); // the store link is open
    proxy.drop(); // A's store link goes silent; its broker link is fine

    const handle = await appB.getTask('t')!.enqueue({});
    await sleep(2_000); // A fetched it and is stuck on its task claim
    const workerB = new Worker(appB, { concurrency: 1, leaseMs: 1_500, blockMs: 200 });
    workers.push(workerB);
    await workerB.start();
    expect(await handle.result({ timeoutMs: 15_000 })).toBe('B');
    expect(ran).toEqual(['B']);
    // A's stuck call no longer holds its slot: a stop with no grace ends well within its lease.
    const stopped = await Promise.race([workerA.stop({ graceMs: 0 }).then(() => 'stopped'), sleep(5_000).then(() => 'still stopping after 5 s')]);
    expect(stopped).toBe('stopped');
  }, 40_000);
});
