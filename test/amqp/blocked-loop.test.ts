import type { ChildProcess } from 'node:child_process';
import { createApp, type App } from '@celeriac/core';
import { AmqpBroker } from '@celeriac/amqp-backend';
import { sleep, uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { heartbeatForLease, takeoverBoundMs } from '../../packages/amqp-backend/src/heartbeat.js';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';
import { faultApp } from './fault-app.js';
import { spawnWorker, waitFor } from './fault-helpers.js';

const LEASE = 3_000;
const BLOCK = 10_000;

// Issue 8, defects 3 and 4: a handler blocking its worker's event loop. RabbitMQ takes the task
// back only when the owner's connection misses its heartbeats, so the heartbeat is fitted to the
// lease (heartbeatForLease): takeover within takeoverBoundMs ≤ leaseMs. And when the old owner
// wakes up, its outcome is stale: it must reach nobody.
describe('amqp: a worker whose event loop is blocked', () => {
  const children: ChildProcess[] = [];
  const apps: App[] = [];
  const names = new Set<string>();
  let admin: AmqpBroker | undefined;
  const adminBroker = async () => (admin ??= await new AmqpBroker(AMQP_URL).connect());
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const a of apps) {
      for (const n of ((await a.connection()).broker as AmqpBroker).declaredQueues) names.add(n);
      await a.close();
    }
    const b = await adminBroker();
    await b.link.withChannel(async (ch) => {
      for (const n of names) await ch.deleteQueue(n).catch(() => {});
    });
    await b.close();
  });

  it('loses its task to another worker within the bound, and its late result is discarded', async () => {
    const queue = uniqueQueue('ab');
    const heartbeat = heartbeatForLease(LEASE);
    const bound = takeoverBoundMs(heartbeat);
    expect(bound).toBeLessThanOrEqual(LEASE);
    const url = `${AMQP_URL}?heartbeat=${heartbeat}`;
    const { app: producer, block } = faultApp(url, queue);
    const admin = await adminBroker();
    const lines: string[] = [];
    children.push(await spawnWorker(url, queue, LEASE, 1, lines));

    await block.enqueue({ ms: BLOCK, value: 'stale' });
    // The producer goes away; its reply queue stays and collects every result sent for the task.
    const producerBroker = (await producer.connection()).broker as AmqpBroker;
    const replies = producerBroker.results.replyQueue;
    for (const n of producerBroker.declaredQueues) names.add(n);
    await producer.close();
    const replyCount = () => admin.link.withChannel(async (ch) => (await ch.checkQueue(replies)).messageCount);
    await waitFor('the blocking handler to start', () => lines.some((l) => l.startsWith('started block')), 10_000);
    const blockedAt = Date.now();

    // Another worker, whose handler of the same task answers at once.
    const taker = createApp({ broker: url, defaultQueue: queue });
    apps.push(taker);
    let takenAt = 0;
    taker.task('fault.block', { input: z.object({ ms: z.number(), value: z.string() }) }, () => {
      takenAt ||= Date.now();
      return 'fresh';
    });
    const worker = new Worker(taker, { queues: [queue], concurrency: 1, leaseMs: LEASE, blockMs: 200 });
    await worker.start();
    try {
      await waitFor('the other worker to take the task over', () => takenAt > 0, BLOCK);
      const takeoverMs = takenAt - blockedAt;
      console.log(JSON.stringify({ test: 'amqp-blocked-loop', leaseMs: LEASE, heartbeatS: heartbeat, boundMs: bound, takeoverMs }));
      expect(takeoverMs).toBeLessThanOrEqual(bound + 1_000); // + redelivery and the taker's first fetch

      // The old owner wakes up, finishes, and tries to settle: nothing of it may arrive.
      await sleep(Math.max(0, blockedAt + BLOCK + 3_000 - Date.now()));
      expect(await replyCount()).toBe(1); // the new owner's, alone
    } finally {
      await worker.stop();
    }
  }, 40_000);
});
