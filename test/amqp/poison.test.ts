import type { ChildProcess } from 'node:child_process';
import { AmqpBroker } from '@celeriac/amqp-backend';
import { uniqueQueue } from '@celeriac/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';
import { spawnWorker } from './fault-helpers.js';
import { faultApp } from './fault-app.js';

const WORK = 200;
const LEASE = 3_000;

// Issue 8, defect 1, end to end: a handler that kills its worker (process.exit) ran 137 times on
// RabbitMQ and, requeued at the front, starved the queue. Worker processes are restarted as a
// process manager would; the poison task must be dead-lettered after maxAttempts (3) deliveries
// that died, and the other tasks must all complete.
// NOTE: the broker counts the deaths (Delivery.lapses, see packages/amqp-backend/src/lapses.test.ts);
// turning them into a dead letter is core's execution step (attemptOf), changed in parallel:
// this test passes once both are merged.
describe('amqp: a task that kills its worker', () => {
  const children: ChildProcess[] = [];
  let admin: AmqpBroker | undefined;
  const names = new Set<string>();
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    admin ??= await new AmqpBroker(AMQP_URL).connect();
    await admin.link.withChannel(async (ch) => {
      for (const n of names) await ch.deleteQueue(n).catch(() => {});
    });
    await admin.close();
  });

  /** Runs worker processes one after another (restarting each that dies) until `done()` or `limit` deaths. */
  async function supervise(queue: string, lines: string[], done: () => boolean, limit: number, settled: () => Promise<boolean>): Promise<number> {
    let deaths = 0;
    while (!done() && deaths < limit) {
      const child = await spawnWorker(AMQP_URL, queue, LEASE, 1, lines);
      children.push(child);
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (child.exitCode !== null || done()) {
            clearInterval(poll);
            resolve();
          }
        }, 20);
      });
      if (child.exitCode !== null) deaths++;
      else {
        // Done: let the last settlements (the dead letter) land before stopping the worker.
        for (let i = 0; i < 100 && !(await settled()); i++) await new Promise((r) => setTimeout(r, 50));
        child.kill('SIGKILL');
      }
    }
    return deaths;
  }

  it('is dead-lettered after maxAttempts deliveries that died; every other task completes', async () => {
    const queue = uniqueQueue('ap');
    const { app, poison, work } = faultApp(AMQP_URL, queue);
    const { broker } = await app.connection();
    for (const n of (broker as AmqpBroker).declaredQueues) names.add(n);
    const handle = await poison.enqueue({});
    await work.enqueueMany(Array.from({ length: WORK }, (_, i) => ({ payload: { i } })));
    for (const n of (broker as AmqpBroker).declaredQueues) names.add(n);

    const lines: string[] = [];
    const completed = () => new Set(lines.filter((l) => l.startsWith('done work'))).size;
    const started = Date.now();
    const buried = () => lines.some((l) => l.startsWith(`failed fault.poison ${handle.id}`));
    const deaths = await supervise(queue, lines, () => completed() >= WORK && buried(), 8, async () => (await broker.stats(queue)).dead >= 1);
    const seconds = (Date.now() - started) / 1_000;
    const runs = lines.filter((l) => l.startsWith('started poison')).length;
    const dead = await broker.deadLetters(queue);
    console.log(JSON.stringify({ test: 'amqp-poison', poisonRuns: runs, workerDeaths: deaths, completed: completed(), seconds, dead: dead.map((d) => d.reason) }));
    for (const n of (broker as AmqpBroker).declaredQueues) names.add(n);
    await app.close();

    expect(runs).toBe(3);
    expect(deaths).toBe(3);
    expect(completed()).toBe(WORK);
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0]!.raw).id).toBe(handle.id);
  }, 120_000);
});
