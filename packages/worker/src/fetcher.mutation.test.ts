import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createApp, MemoryBroker, type App, type Delivery, type FetchRequest, type Logger } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Executor } from './executor.js';
import { Fetcher } from './fetcher.js';

// The fetch loop's promises to the worker, each seen through a real memory broker whose `fetch`
// the test can script (fail, never answer, answer late, answer empty at once).
const LEASE = 1_000;
const BLOCK = 100;

const apps: App[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

type FetchFn = (request: FetchRequest, real: MemoryBroker) => Promise<Delivery[]>;

async function setup(script: FetchFn, concurrency = 2) {
  const real = new MemoryBroker();
  const requests: FetchRequest[] = [];
  const broker = new Proxy(real, {
    get: (t, p) =>
      p === 'fetch'
        ? (request: FetchRequest) => {
            requests.push(request);
            return script(request, real);
          }
        : bound(t, p),
  });
  const queue = uniqueQueue('fm');
  const logs: { level: string; fields: object; msg: string }[] = [];
  const at = (level: string) => (fields: object | string, msg?: string) => void logs.push({ level, fields: fields as object, msg: msg ?? '' });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const app = createApp({ broker, defaultQueue: queue, logger });
  apps.push(app);
  const ran: string[] = [];
  const t = app.task('noted', { input: z.object({}) }, (_, ctx) => void ran.push(ctx.id));
  const conn = await app.connection();
  const executor = new Executor(app, conn, concurrency, LEASE, () => {});
  const errors: { at: number; err: Error }[] = [];
  const fetcher = new Fetcher(app, conn, executor, { queues: [queue], leaseMs: LEASE, blockMs: BLOCK, onError: (err) => errors.push({ at: Date.now(), err }) });
  const takeReal = (max = 10) => real.fetch({ queues: [queue], max, leaseMs: LEASE, waitMs: 0 });
  return { real, queue, t, ran, executor, fetcher, errors, requests, takeReal, logs };
}

/** A member of the real broker, methods bound to it (its private fields need the real receiver). */
function bound(t: MemoryBroker, p: string | symbol): unknown {
  const value: unknown = Reflect.get(t, p, t);
  return typeof value === 'function' ? value.bind(t) : value;
}

const never = () => new Promise<Delivery[]>(() => {});

describe('Fetcher', () => {
  it('starts one fetch loop however often start() is called', async () => {
    const { fetcher, requests } = await setup(never);
    fetcher.start();
    fetcher.start();
    await new Promise((resolve) => setImmediate(resolve));
    expect(requests).toHaveLength(1);
    await fetcher.stop();
  });

  it('asks for as many deliveries as there are free slots, with its lease and block time', async () => {
    const { fetcher, requests } = await setup(never, 3);
    fetcher.start();
    await new Promise((resolve) => setImmediate(resolve));
    expect(requests[0]).toMatchObject({ max: 3, leaseMs: LEASE, waitMs: BLOCK });
    await fetcher.stop();
  });

  it('runs what it fetched', async () => {
    const { fetcher, t, ran, real } = await setup((r, b) => b.fetch(r));
    const h = await t.enqueue({});
    fetcher.start();
    await vi.waitFor(() => expect(ran).toEqual([h.id]));
    await fetcher.stop();
    await vi.waitFor(async () => expect(await real.stats(h.queue)).toMatchObject({ completed: 1, inFlight: 0 }));
  });

  it('starts the back-off again from 100 ms once a fetch has succeeded', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let failing = true;
    const { fetcher, errors } = await setup(async (r, b) => {
      if (failing) throw new Error('broker unreachable');
      return b.fetch(r);
    });
    fetcher.start();
    await vi.advanceTimersByTimeAsync(1_600); // errors at +0, +100, +300, +700, +1500: back-off at 1.6 s
    expect(errors).toHaveLength(5);
    failing = false;
    await vi.advanceTimersByTimeAsync(2_000); // the broker is back: fetches succeed (and block 100 ms)
    failing = true;
    await vi.advanceTimersByTimeAsync(1_000);
    const after = errors.slice(5);
    expect(after.slice(1, 4).map((e, i) => e.at - after[i]!.at)).toEqual([100, 200, 400]);
    await fetcher.stop();
  });

  it('stops at once while backing off, without waiting out the back-off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { fetcher, errors } = await setup(async () => {
      throw new Error('broker unreachable');
    });
    fetcher.start();
    await vi.advanceTimersByTimeAsync(20_000);
    const count = errors.length;
    let stopped = false;
    void fetcher.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(errors).toHaveLength(count); // and no fetch after the stop
  });

  it('does not report the error of a fetch the stop itself cut short', async () => {
    const { fetcher, errors, requests } = await setup(
      (r) => new Promise<Delivery[]>((_, reject) => r.signal?.addEventListener('abort', () => reject(new Error('fetch aborted')), { once: true })),
    );
    fetcher.start();
    await vi.waitFor(() => expect(requests).toHaveLength(1));
    await fetcher.stop();
    expect(errors).toEqual([]);
  });

  it('does not spin when the broker answers empty at once (the event loop stays free)', async () => {
    const { fetcher, requests } = await setup(async () => []);
    fetcher.start();
    await new Promise((resolve) => setTimeout(resolve, 20)); // a timer still fires
    expect(requests.length).toBeGreaterThan(0);
    await fetcher.stop();
  });

  it('gives back, unstarted, deliveries that arrive after the stop', async () => {
    let answer!: (ds: Delivery[]) => void;
    const { fetcher, t, ran, real, requests, takeReal, errors } = await setup(() => new Promise<Delivery[]>((resolve) => (answer = resolve)));
    const h = await t.enqueue({});
    fetcher.start();
    await vi.waitFor(() => expect(requests).toHaveLength(1));
    await fetcher.stop();
    answer(await takeReal()); // the broker's answer comes in after all
    await vi.waitFor(async () => expect(await real.stats(h.queue)).toMatchObject({ ready: 1, inFlight: 0 }));
    expect(ran).toEqual([]);
    expect(errors).toEqual([]);
    const [again] = await takeReal();
    expect([again?.message.id, again?.lapses]).toEqual([h.id, 0]); // given back, not lapsed
  });

  it('gives back deliveries whose answer came in with the stop', async () => {
    let answer!: (ds: Delivery[]) => void;
    const { fetcher, t, ran, real, requests, takeReal } = await setup(() => new Promise<Delivery[]>((resolve) => (answer = resolve)));
    const h = await t.enqueue({});
    fetcher.start();
    await vi.waitFor(() => expect(requests).toHaveLength(1));
    answer(await takeReal());
    await fetcher.stop(); // in the same tick as the answer: the answer wins the race, the stop is seen after
    await vi.waitFor(async () => expect(await real.stats(h.queue)).toMatchObject({ ready: 1, inFlight: 0 }));
    expect(ran).toEqual([]);
  });

  it('gives back deliveries that arrive after the fetch was declared late, and fetches again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const answers: ((ds: Delivery[]) => void)[] = [];
    const { fetcher, t, ran, real, takeReal, errors } = await setup(() => new Promise<Delivery[]>((resolve) => answers.push(resolve)));
    const h = await t.enqueue({});
    fetcher.start();
    await vi.advanceTimersByTimeAsync(BLOCK + LEASE);
    expect(errors.map((e) => e.err.message)).toEqual([`the broker did not answer a fetch within ${BLOCK + LEASE} ms (blockMs + leaseMs)`]);
    answers[0]!(await takeReal()); // the late answer
    await vi.advanceTimersByTimeAsync(0);
    expect(await real.stats(h.queue)).toMatchObject({ ready: 1, inFlight: 0 });
    expect(ran).toEqual([]);
    await vi.advanceTimersByTimeAsync(100); // after the 100 ms back-off, a new fetch
    expect(answers).toHaveLength(2);
    await fetcher.stop();
  });

  it('logs an outage once as a warning with the back-off, later failures at debug, and its end once', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let failing = 3;
    const { fetcher, logs } = await setup(async (r, real) => {
      if (failing-- > 0) throw new Error('broker unreachable');
      return real.fetch(r);
    });
    fetcher.start();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + BLOCK + 1); // three back-offs, then a fetch that answers (empty, after blocking)
    const outage = logs.filter((l) => l.level !== 'debug' || l.msg.includes('again'));
    expect(outage).toEqual([
      { level: 'warn', fields: { err: 'Error: broker unreachable', retryInMs: 100 }, msg: expect.stringMatching(/^cannot fetch from the broker \(Error: broker unreachable\); retrying in 0\.1 s/) },
      { level: 'debug', fields: { err: 'Error: broker unreachable', retryInMs: 200, failures: 2 }, msg: 'fetch failed again; backing off' },
      { level: 'debug', fields: { err: 'Error: broker unreachable', retryInMs: 400, failures: 3 }, msg: 'fetch failed again; backing off' },
      { level: 'info', fields: { downMs: 700, failedFetches: 3 }, msg: 'broker reachable again after 0.7 s' },
    ]);
    failing = 1; // a second outage is news again
    await vi.advanceTimersByTimeAsync(BLOCK + 1);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(2);
    await fetcher.stop();
  });

  it('takes nothing more from the broker once stopped while waiting for a free slot', async () => {
    const { fetcher, t, requests, real, queue } = await setup(async (r, b) => b.fetch(r), 1);
    const busy = new Promise<never>(() => {});
    const hold = t.app.task('holds-the-slot', { input: z.object({}) }, () => busy);
    await hold.enqueue({});
    await t.enqueue({});
    fetcher.start();
    await vi.waitFor(async () => expect(await real.stats(queue)).toMatchObject({ inFlight: 1, ready: 1 }));
    const sent = requests.length;
    await fetcher.stop();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(requests).toHaveLength(sent);
    expect(await real.stats(queue)).toMatchObject({ inFlight: 1, ready: 1 });
  });

  // The loop's signal lives as long as the worker: a listener left on it per fetch or per back-off
  // is a leak (and Node's "MaxListenersExceededWarning: Possible EventTarget memory leak").
  it('leaves no listener behind on its stop signal, fetch after fetch', async () => {
    const { fetcher, requests } = await setup(async () => []);
    fetcher.start();
    await vi.waitFor(() => expect(requests.length).toBeGreaterThan(50));
    expect(getEventListeners(requests.at(-1)!.signal!, 'abort').length).toBeLessThanOrEqual(1);
    await fetcher.stop();
  });

  it('leaves no listener behind on its stop signal, back-off after back-off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { fetcher, requests, errors } = await setup(async () => {
      throw new Error('broker unreachable');
    });
    fetcher.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(errors.length).toBeGreaterThan(10);
    expect(getEventListeners(requests.at(-1)!.signal!, 'abort').length).toBeLessThanOrEqual(1);
    await fetcher.stop();
  });
});
