import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import type { Broker } from './broker.js';
import { BackendError } from './errors.js';
import { TaskHandle } from './handle.js';
import { MemoryBroker } from './memory/broker.js';
import { MemoryResultBackend } from './memory/results.js';
import type { ResultBackend } from './results.js';
import { uniqueQueue } from './testing/messages.js';

const apps: App[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A real backend with some of its answers changed (methods stay bound to the real object). */
function overriding<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, p) {
      if (p in overrides) return overrides[p as keyof T];
      const value: unknown = Reflect.get(t, p, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

describe('enqueue waits for the broker within enqueueTimeoutMs', () => {
  it('rejects with a BackendError that says what may have happened and what is safe to do', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const real = new MemoryBroker();
    const silent = overriding<Broker>(real, { publish: () => new Promise(() => {}) }); // a broker that never confirms
    const app = createApp({ broker: silent, enqueueTimeoutMs: 2_000 });
    apps.push(app);
    const t = app.task('t', { input: z.object({}) }, () => 1);
    let settled: unknown;
    const enqueue = t.enqueue({}, { id: 'order-7' }).then(
      () => (settled = 'resolved'),
      (err: unknown) => (settled = err),
    );
    // A broker instance is not told the bound: core's net fires ENQUEUE_NET_MS (1 s) after it.
    await vi.advanceTimersByTimeAsync(2_999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await enqueue;
    expect(settled).toBeInstanceOf(BackendError);
    expect((settled as Error).message).toBe(
      'the broker did not confirm the enqueue of task order-7 within 2000 ms (enqueueTimeoutMs): it may or may not have been enqueued; ' +
        'enqueueing again with the same `id` or `idempotencyKey` is safe: the task still takes effect once',
    );
    const many = t.enqueueMany([{ payload: {} }, { payload: {} }]).catch((e: Error) => e.message);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await many).toMatch(/^the broker did not confirm the enqueue of 2 tasks within 2000 ms/);
  });
});

describe('publish dedup across processes where the broker dedups per process only', () => {
  it('reserves keys in a shared store: one task per key from two producers', async () => {
    const queue = uniqueQueue('dd');
    // Two producer processes, each with its own broker connection whose dedup is per process (as
    // RabbitMQ's), and one store they share (as Redis).
    const store = overriding<ResultBackend>(new MemoryResultBackend(), { capabilities: { push: true, shared: true } });
    const brokers = [new MemoryBroker(), new MemoryBroker()];
    const producers = brokers.map((b) => {
      const broker = overriding<Broker>(b, { capabilities: { ...b.capabilities, sharedDedup: false } });
      const app = createApp({ broker, results: store, defaultQueue: queue });
      apps.push(app);
      return app.task('charge', { input: z.object({ key: z.string() }) }, () => 1);
    });
    const keys = ['a', 'b', 'c'];
    const handles = await Promise.all(
      producers.flatMap((task) => keys.flatMap((key) => Array.from({ length: 5 }, () => task.enqueue({ key }, { idempotencyKey: key })))),
    );
    const stats = await Promise.all(brokers.map((b) => b.stats(queue)));
    expect(stats.reduce((n, s) => n + s.ready, 0)).toBe(keys.length);
    for (const key of keys) {
      const mine = handles.filter((_, i) => keys[Math.floor(i / 5) % keys.length] === key);
      expect(new Set(mine.map((h) => h.id)).size).toBe(1);
      expect(mine.filter((h) => !h.duplicate)).toHaveLength(1);
    }
  });

  it('publishes keyed tasks as before where the broker dedups across processes', async () => {
    const store = overriding<ResultBackend>(new MemoryResultBackend(), { capabilities: { push: true, shared: true } });
    const broker = new MemoryBroker();
    const app = createApp({ broker, results: store });
    apps.push(app);
    const reserve = vi.spyOn(store, 'reserveKey');
    const t = app.task('t', { input: z.object({}) }, () => 1);
    const [a, b] = await Promise.all([t.enqueue({}, { idempotencyKey: 'k' }), t.enqueue({}, { idempotencyKey: 'k' })]);
    expect(a!.id).toBe(b!.id);
    expect(reserve).not.toHaveBeenCalled();
  });
});

describe('handle.result({ timeoutMs })', () => {
  it('counts the time spent connecting to the store in its limit', async () => {
    const handle = new TaskHandle({ connection: () => new Promise<never>(() => {}), control: { revoke: () => Promise.reject(new Error('unused')) } }, 'task-1', 'default', 't'); // a store that never connects
    const started = Date.now();
    await expect(handle.result({ timeoutMs: 100 })).rejects.toThrow('no result for task task-1 within 100 ms (it may still be queued or running)');
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
