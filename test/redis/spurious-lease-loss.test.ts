import { createApp, type Logger } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from './helpers.js';

// A healthy Redis and a short lease, so renewals often race acks. A renewal that reaches the server
// after the ack answers "not yours" for a delivery that settled fine: that is no lost lease, and
// must neither abort the handler's signal nor log "lease lost while running".
describe('lease renewals racing successful acks', () => {
  const prefix = uniquePrefix('spur');
  let stop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await stop?.();
    await removePrefix(prefix);
  });

  it('3,000 healthy tasks with leaseMs 150: no "lease lost while running", no aborted signal that a lapse did not explain', async () => {
    const queue = uniqueQueue('spur');
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (_o: unknown, m?: string) => void warnings.push(String(m)), child: () => logger } as unknown as Logger;
    const app = createApp({ broker: urlWith(prefix), defaultQueue: queue, logger });
    let done = 0;
    let aborted = 0;
    app.task('t', { input: z.object({}), keepResult: false }, async (_: unknown, ctx) => {
      ctx.signal.addEventListener('abort', () => aborted++);
      await sleep(5);
      done++;
    });
    const t = app.getTask('t')!;
    const N = 3_000;
    for (let i = 0; i < N; i += 500) await t.enqueueMany(Array.from({ length: 500 }, () => ({ payload: {} })));
    const worker = new Worker(app, { concurrency: 20, leaseMs: 150, blockMs: 100, logger });
    stop = async () => {
      await worker.stop({ graceMs: 1_000 });
      await app.close();
    };
    await worker.start();
    for (const until = Date.now() + 60_000; done < N && Date.now() < until; ) await sleep(50);
    await sleep(500); // renewals still in flight answer
    expect(done).toBe(N);
    expect(warnings.filter((m) => /lease lost while running/.test(m))).toEqual([]);
    // Only a real local deadline (a starved timer on a busy machine) may abort a signal here.
    const lapses = warnings.filter((m) => /not confirmed since/.test(m)).length;
    expect(aborted).toBeLessThanOrEqual(lapses);
  }, 90_000);
});
