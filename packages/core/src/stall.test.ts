import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { Attempt } from './attempt.js';
import { runDelivery } from './execution.js';
import { MemoryBroker } from './memory/broker.js';
import { MemoryResultBackend } from './memory/results.js';
import { uniqueQueue } from './testing/messages.js';

const apps: App[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function setup(store?: MemoryResultBackend) {
  const broker = new MemoryBroker();
  const queue = uniqueQueue('stall');
  const app = createApp({ broker, results: store ?? broker.results, defaultQueue: queue });
  apps.push(app);
  let runs = 0;
  const task = app.task('t', { input: z.object({}) }, () => ++runs);
  return { app, broker, queue, task, runs: () => runs };
}

describe('store calls inside a run are bounded by the lease', () => {
  it('a store apart that never answers the outcome: the delivery goes back (no lapse) within leaseMs and the run ends released', async () => {
    const store = new MemoryResultBackend();
    vi.spyOn(store, 'store').mockImplementation(() => new Promise<boolean>(() => {})); // a silent store
    const { app, broker, queue, task, runs } = setup(store);
    await task.enqueue({});
    const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    const started = Date.now();
    const outcome = await runDelivery(app, await app.connection(), d!, { attempt: new Attempt(), leaseMs: 300 });
    expect(outcome).toBe('released');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(runs()).toBe(1);
    const [again] = await broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    expect(again?.message.id).toBe(d!.message.id);
    expect(again?.lapses).toBe(0);
    await again!.ack();
  });

  it('a plain task on a broker that stores with the ack gets no lease timer; a keyed one does', async () => {
    const LEASE = 12_345; // a value no other timer uses
    const { app, broker, queue, task } = setup();
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const leaseTimers = () => timers.mock.calls.filter(([, ms]) => ms === LEASE).length;
    await task.enqueue({});
    await task.enqueue({}, { idempotencyKey: 'k' });
    for (const keyed of [false, true]) {
      const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 1_000 });
      expect(d!.message.idempotencyKey !== null).toBe(keyed);
      const before = leaseTimers();
      expect(await runDelivery(app, await app.connection(), d!, { attempt: new Attempt(), leaseMs: LEASE })).toBe('succeeded');
      expect(leaseTimers() - before).toBe(keyed ? 1 : 0);
    }
  });
});
