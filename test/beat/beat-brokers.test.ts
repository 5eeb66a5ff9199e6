import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { ManualClock, Scheduler, Worker } from '@celeriac/worker';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from '../redis/helpers.js';

const AMQP_URL = process.env.CELERIAC_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const MIN = 60_000;

/**
 * Three scheduler instances, each with its own app and connections (as three hosts would have),
 * step through the same ticks in a different order each time; every tick must become one task.
 */
async function runThreeSchedulers(apps: App[], start: number, until: number): Promise<number> {
  const clocks = apps.map(() => new ManualClock(start));
  const schedulers = apps.map((app, i) => new Scheduler(app, { clock: clocks[i]! }));
  let created = 0;
  for (const s of schedulers) created += await s.runDue(start);
  const schedule = apps[0]!.schedules.get('every-five')!;
  for (let t = schedule.next(start), n = 0; t <= until; t = schedule.next(t), n++) {
    const counts = await Promise.all(
      [0, 1, 2].map((k) => {
        const i = (n + k) % 3;
        clocks[i]!.advanceTo(t + k * 500);
        return schedulers[i]!.runDue(t + k * 500);
      }),
    );
    created += counts.reduce((a, b) => a + b, 0);
  }
  return created;
}

function beatApp(broker: string, queue: string, results?: string, seen?: Map<string, number>) {
  const app = createApp({ broker, defaultQueue: queue, ...(results ? { results } : {}) });
  const task = app.task('beat.work', { input: z.object({}) }, (_, ctx) => {
    seen?.set(ctx.id, (seen.get(ctx.id) ?? 0) + 1);
    return ctx.id;
  });
  app.schedule('every-five', { cron: '*/5 * * * *', task, payload: {} });
  return app;
}

describe('beat on real brokers: three instances, each tick exactly once', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it('Redis: a day of */5 from three schedulers is 288 tasks', async () => {
    const prefix = uniquePrefix('beat');
    const queue = uniqueQueue('beat');
    const apps = [0, 1, 2].map(() => beatApp(urlWith(prefix), queue));
    cleanups.push(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await removePrefix(prefix);
    });
    const start = Date.parse('2026-04-01T00:00:00Z');
    const created = await runThreeSchedulers(apps, start, start + 24 * 60 * MIN);
    expect(created).toBe(288);
    expect(await (await apps[0]!.connection()).broker.stats(queue)).toMatchObject({ ready: 288 });
  });

  it('Redis: a restarted scheduler resumes from the stored last run, repeating nothing', async () => {
    const prefix = uniquePrefix('beat');
    const queue = uniqueQueue('beat');
    const before = beatApp(urlWith(prefix), queue);
    const start = Date.parse('2026-04-01T00:00:00Z');
    expect(await runThreeSchedulers([before, before, before], start, start + 30 * MIN)).toBe(6);
    await before.close();
    const after = beatApp(urlWith(prefix), queue);
    cleanups.push(async () => {
      await after.close();
      await removePrefix(prefix);
    });
    // Back 2 hours later with the default policy (skip): nothing is back-filled or repeated.
    const scheduler = new Scheduler(after, { clock: new ManualClock(start + 150 * MIN + 1_000) });
    expect(await scheduler.runDue(start + 150 * MIN + 1_000)).toBe(1); // the tick at +150 min is on time
    expect(scheduler.describe()[0]!.lastRun).toBe(start + 150 * MIN);
    expect(await (await after.connection()).broker.stats(queue)).toMatchObject({ ready: 7 });
  });

  it('RabbitMQ (results in Redis): two hours of */5 from three schedulers runs each tick once', async () => {
    const prefix = uniquePrefix('beat-amqp');
    const queue = uniqueQueue('beat');
    const seen = new Map<string, number>();
    const apps = [0, 1, 2].map(() => beatApp(AMQP_URL, queue, urlWith(prefix, REDIS_URL), seen));
    cleanups.push(async () => {
      await Promise.all(apps.map((a) => a.close()));
      await removePrefix(prefix);
    });
    const start = Date.parse('2026-04-01T00:00:00Z');
    await runThreeSchedulers(apps, start, start + 120 * MIN);
    const worker = new Worker(apps[0]!, { concurrency: 8 });
    await worker.start();
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const stats = await (await apps[0]!.connection()).broker.stats(queue);
      if (seen.size === 24 && stats.ready === 0 && stats.inFlight === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await worker.stop();
    expect(seen.size).toBe(24);
    expect([...seen.values()].every((runs) => runs === 1)).toBe(true);
    for (const id of seen.keys()) expect(id).toMatch(/^beat:every-five:\d+$/);
  });
});
