import { createApp } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import type { AmqpBroker } from '@celeriac/amqp-backend';
import { Worker } from '@celeriac/worker';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';
import { removePrefix, uniquePrefix, urlWith } from '../redis/helpers.js';

// RabbitMQ with a Redis store: a listing under way elsewhere (the dashboard's queue page, `celeriac
// inspect dead`) holds the dead letters it reads, unacked, so a redrive reading the ids meanwhile
// does not see them. Such a letter must be refused as not found, not moved unprepared (its failed
// outcome still stored: the worker would bury it again without running it, after "redriven").
describe('amqp+redis: redrive of a letter another listing holds', () => {
  const prefix = uniquePrefix('rdh');
  const queue = uniqueQueue('rdh');
  const app = createApp({ broker: AMQP_URL, results: urlWith(prefix), defaultQueue: queue });
  const worker = new Worker(app, { queues: [queue], concurrency: 1, blockMs: 200 });
  afterAll(async () => {
    await worker.stop({ graceMs: 1_000 });
    const broker = (await app.connection()).broker as AmqpBroker;
    await broker.link.withChannel(async (ch) => void (await Promise.all([...broker.declaredQueues].map((n) => ch.deleteQueue(n).catch(() => {})))));
    await app.close();
    await removePrefix(prefix);
  });

  it('is refused as not found and stays dead with its outcome; redriven once the listing ends, it runs and succeeds', async () => {
    let fail = true;
    const runs: string[] = [];
    const job = app.task('rdh.flaky', { input: z.object({}), retry: { maxAttempts: 1 } }, (_, ctx) => {
      runs.push(ctx.id);
      if (fail) throw new Error('not yet');
      return 'ok';
    });
    await worker.start();
    const handle = await job.enqueue({});
    await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await expect.poll(async () => (await app.inspect.deadLetters(queue)).map((d) => d.id), { timeout: 5_000 }).toEqual([handle.id]);
    fail = false;

    const conn = await app.connection();
    const broker = conn.broker as AmqpBroker;
    const raw = await amqp.connect(AMQP_URL);
    const readIds = broker.deadLetterIds!.bind(broker);
    try {
      // The other listing: a real consumer holding the letter while the redrive reads the ids.
      broker.deadLetterIds = async (q: string) => {
        const ch = await raw.createChannel();
        expect(await ch.get(`${q}:dead`, { noAck: false })).not.toBe(false);
        try {
          return await readIds(q);
        } finally {
          await ch.close(); // the listing ends: the letter is back in place
        }
      };
      expect(await app.control.redrive(queue, { ids: [handle.id] })).toEqual({ redriven: [], refused: [{ id: handle.id, reason: 'not found' }] });
    } finally {
      broker.deadLetterIds = readIds;
      await raw.close();
    }
    expect((await app.inspect.deadLetters(queue)).map((d) => d.id)).toEqual([handle.id]);
    expect((await conn.results.get(handle))?.state).toBe('failed');

    expect(await app.control.redrive(queue, { ids: [handle.id] })).toEqual({ redriven: [handle.id], refused: [] });
    await expect.poll(async () => (await conn.results.get(handle))?.state, { timeout: 10_000 }).toBe('succeeded');
    expect(runs).toEqual([handle.id, handle.id]);
  });
});
