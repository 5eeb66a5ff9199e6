import { createApp, type App, type TaskResult } from '@celeriac/core';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from './helpers.js';

// Results in a store apart from the broker: an owner stores its final failure (fenced by the task
// claim), then dies before dead-lettering. The redelivery finds the task claim `done` with a
// `failed` record: it must dead-letter with that error, not ack it away as a duplicate.
describe('store apart from the broker: a stored failure whose dead letter never happened', () => {
  const bp = uniquePrefix('dfb');
  const rp = uniquePrefix('dfr');
  let app: App | undefined;
  let worker: Worker | undefined;
  afterAll(async () => {
    await worker?.stop({ graceMs: 0 });
    await app?.close();
    await removePrefix(bp);
    await removePrefix(rp);
  });

  it('is dead-lettered with the stored error and counted failed, and its handler does not run again', async () => {
    const queue = uniqueQueue('df');
    app = createApp({ broker: urlWith(bp), results: urlWith(rp), defaultQueue: queue });
    let runs = 0;
    const task = app.task('charge', { input: z.object({}), retry: { maxAttempts: 3 } }, () => ++runs);
    const conn = await app.connection();
    expect(conn.results).not.toBe(conn.broker.results);
    const id = `df-${queue}`;
    // What the dead owner left: its final attempt's failure, stored under the task id.
    const failed: TaskResult = { id, queue, task: 'charge', state: 'failed', error: { name: 'Error', message: 'card declined' }, attempts: 3, finishedAt: Date.now(), idempotencyKey: null };
    expect(await conn.results.store({ record: failed, ttlMs: 60_000, keyTtlMs: 60_000 })).toBe(true);
    // The message comes back (as it would after the owner's lease lapsed).
    await task.enqueue({}, { id });
    worker = new Worker(app, { concurrency: 1, leaseMs: 2_000, blockMs: 200 });
    const failures: string[] = [];
    worker.on('task:failed', (e: { reason: string }) => failures.push(e.reason));
    await worker.start();
    let dead = await conn.broker.deadLetters(queue);
    for (const until = Date.now() + 10_000; dead.length === 0 && Date.now() < until; await sleep(100)) dead = await conn.broker.deadLetters(queue);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toMatch(/failed after 3 attempt\(s\): card declined/);
    expect(failures).toEqual([dead[0]!.reason]);
    expect(runs).toBe(0);
    expect(await conn.results.get({ id, queue })).toMatchObject({ state: 'failed', error: { message: 'card declined' } });
  });
});
