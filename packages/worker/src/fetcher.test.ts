import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp, MemoryBroker, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';
import { Fetcher } from './fetcher.js';

const apps: App[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function setup(broker: MemoryBroker | object) {
  const app = createApp({ broker: broker as MemoryBroker });
  apps.push(app);
  const conn = await app.connection();
  const executor = new Executor(app, conn, 2, 1_000, () => {});
  const errors: { at: number; err: Error }[] = [];
  const fetcher = new Fetcher(app, conn, executor, { queues: [uniqueQueue('f')], leaseMs: 1_000, blockMs: 100, onError: (err) => errors.push({ at: Date.now(), err }) });
  return { fetcher, errors };
}

describe('Fetcher', () => {
  it('backs off exponentially after broker errors, from 100 ms up to 5 s', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const broker = new MemoryBroker();
    const { fetcher, errors } = await setup(broker);
    await broker.close(); // every fetch now fails
    fetcher.start();
    await vi.advanceTimersByTimeAsync(25_000);
    const gaps = errors.slice(1).map((e, i) => e.at - errors[i]!.at);
    expect(gaps.slice(0, 9)).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
    expect(errors[0]!.err.message).toMatch(/memory broker is closed/);
    await fetcher.stop();
  });

  it('treats a fetch that never answers as a broker error after blockMs + leaseMs, and still stops at once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const real = new MemoryBroker();
    // A broker cut off by a silent partition: fetch never answers.
    const silent = new Proxy(real, { get: (t, p) => (p === 'fetch' ? () => new Promise(() => {}) : Reflect.get(t, p, t)) });
    const { fetcher, errors } = await setup(silent);
    const t0 = Date.now();
    fetcher.start();
    await vi.advanceTimersByTimeAsync(1_099);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(errors.map((e) => [e.at - t0, e.err.message])).toEqual([[1_100, 'the broker did not answer a fetch within 1100 ms (blockMs + leaseMs)']]);
    await vi.advanceTimersByTimeAsync(500); // backed off 100 ms, then a new fetch hangs
    let stopped = false;
    void fetcher.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(true);
  });
});
