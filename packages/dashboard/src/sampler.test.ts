import { createApp, type App, type QueueInfo } from '@celeriac/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { READ_TIMEOUT_MS, parseDashboardOptions } from './options.js';
import { ABANDON_AFTER_MS, IDLE_AFTER_MS, MAX_ABANDONED, IDLE_REFRESH_MS, Sampler } from './sampler.js';

// The sampler's pacing on an injected clock (fake timers), over a real in-memory app whose queue
// listing is made slow or hung: how often it reads, and that it recovers.
let app: App;
let sampler: Sampler | undefined;
const reads: { start: number; end: number | null }[] = [];
let behaviour: (read: number) => Promise<void> = async () => {};
/** What read `n` answers (the app's real queues by default): lets a test tell one read's answer from another's. */
let answerOf: (read: number, queues: QueueInfo[]) => QueueInfo[] = (_, queues) => queues;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  reads.length = 0;
  app = createApp({ broker: `memory://sampler-${Math.random().toString(36).slice(2)}` });
  const queues = app.inspect.queues.bind(app.inspect);
  app.inspect.queues = async (): Promise<QueueInfo[]> => {
    const read = { start: Date.now(), end: null as number | null };
    reads.push(read);
    const n = reads.length;
    await behaviour(n);
    read.end = Date.now();
    return answerOf(n, await queues());
  };
});

afterEach(async () => {
  sampler?.close();
  behaviour = async () => {};
  answerOf = (_, queues) => queues;
  vi.useRealTimers();
  await app.close();
});

const settings = parseDashboardOptions({});

describe('Sampler', () => {
  it('a slow broker is not read back to back: at least half a refresh between the end of one read and the start of the next', async () => {
    behaviour = () => new Promise((r) => setTimeout(r, 900));
    sampler = new Sampler(app, settings);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(reads.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < reads.length; i++) expect(reads[i]!.start - reads[i - 1]!.end!).toBeGreaterThanOrEqual(settings.refreshMs / 2);
  });

  it('a read past its bound: 503 meanwhile, no other read starts while it is pending (no pile-up), and its late answer is served', async () => {
    let answer!: () => void;
    behaviour = (n) => (n === 1 ? new Promise((r) => (answer = r)) : Promise.resolve());
    sampler = new Sampler(app, settings);
    const first = sampler.current().catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(READ_TIMEOUT_MS);
    expect(await first).toMatchObject({ status: 503, message: expect.stringMatching(/within 2 s/) });
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(settings.refreshMs);
      await expect(sampler.current()).rejects.toMatchObject({ status: 503 });
    }
    expect(reads).toHaveLength(1);
    answer();
    await vi.advanceTimersByTimeAsync(0);
    // The late answer is applied at once and the error cleared: served without waiting for another read.
    // Dated when that read began: its counts are of then, not of when the answer landed.
    await expect(sampler.current(60_000)).resolves.toMatchObject({ at: reads[0]!.start, control: true });
    expect(reads).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(settings.refreshMs);
    expect(reads).toHaveLength(2);
  });

  it('a read that never settles is given up after ABANDON_AFTER_MS: a fresh read starts and is served; the old answer changes nothing', async () => {
    let stale!: () => void;
    behaviour = (n) => (n === 1 ? new Promise((r) => (stale = r)) : Promise.resolve());
    const staleQueue: QueueInfo = { queue: 'from-the-stale-read', ready: 1, delayed: 0, inFlight: 0, dead: 0, completed: 0, failed: 0, paused: false };
    answerOf = (n, queues) => (n === 1 ? [...queues, staleQueue] : queues);
    sampler = new Sampler(app, settings);
    let told = 0;
    sampler.onDeltas(() => told++);
    await vi.advanceTimersByTimeAsync(ABANDON_AFTER_MS - READ_TIMEOUT_MS);
    expect(reads).toHaveLength(1); // still pending, not yet given up: no pile-up
    await vi.advanceTimersByTimeAsync(2 * READ_TIMEOUT_MS + settings.refreshMs); // the next tick after the bound
    expect(reads).toHaveLength(2); // given up: a fresh read
    const fresh = await sampler.current(60_000);
    const toldBefore = told;
    stale(); // the abandoned read answers at last, older than what is served
    await vi.advanceTimersByTimeAsync(0);
    const after = await sampler.current(60_000);
    expect(after.queues.map((q) => q.queue)).not.toContain('from-the-stale-read');
    expect(after.at).toBeGreaterThanOrEqual(fresh.at);
    expect(told).toBe(toldBefore); // its workers' counts were not observed (no deltas told)
  });

  it('reads that never settle are abandoned MAX_ABANDONED at most: then no new read starts until one settles', async () => {
    const hung: (() => void)[] = [];
    behaviour = () => new Promise((r) => hung.push(r));
    sampler = new Sampler(app, settings);
    await vi.advanceTimersByTimeAsync((MAX_ABANDONED + 3) * (ABANDON_AFTER_MS + 2 * READ_TIMEOUT_MS));
    expect(reads).toHaveLength(MAX_ABANDONED + 1); // the abandoned ones, and the one it now waits for
    await expect(sampler.current()).rejects.toMatchObject({ status: 503 });
    behaviour = async () => {};
    hung.shift()!(); // an abandoned read ends at last: room for another
    await vi.advanceTimersByTimeAsync(2 * READ_TIMEOUT_MS + settings.refreshMs);
    expect(reads.length).toBeGreaterThan(MAX_ABANDONED + 1); // the one it waited for is given up: fresh reads again
    await expect(sampler.current()).resolves.toMatchObject({ control: true });
    hung.splice(0).forEach((r) => r());
  });

  it('a store that always answers later than the bound is still served, not 503 forever; readTimeoutMs raises the bound', async () => {
    behaviour = () => new Promise((r) => setTimeout(r, READ_TIMEOUT_MS + 500));
    sampler = new Sampler(app, settings);
    await vi.advanceTimersByTimeAsync(READ_TIMEOUT_MS + 500);
    await expect(sampler.current(60_000)).resolves.toMatchObject({ control: true });
    sampler.close();
    sampler = new Sampler(app, parseDashboardOptions({ readTimeoutMs: 5_000 }));
    const answers: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      const answer = sampler.current().then(() => 'ok', (err: { status?: number }) => err.status);
      await vi.advanceTimersByTimeAsync(3_000);
      answers.push(await answer);
    }
    expect(answers).toEqual(Array(10).fill('ok'));
  });

  it('with no request for a while it reads every 10 s; a request then reads at once', async () => {
    sampler = new Sampler(app, settings);
    await sampler.current();
    await vi.advanceTimersByTimeAsync(IDLE_AFTER_MS + IDLE_REFRESH_MS);
    const before = reads.length;
    await vi.advanceTimersByTimeAsync(5 * IDLE_REFRESH_MS);
    expect(reads.length - before).toBeLessThanOrEqual(5);
    expect(reads.length - before).toBeGreaterThanOrEqual(4);
    await vi.advanceTimersByTimeAsync(IDLE_REFRESH_MS / 2);
    const asked = Date.now();
    expect(sampler.latest!.at).toBeLessThan(asked - settings.refreshMs);
    // A generous maxAgeMs would accept the idle snapshot: only the idle rule makes this read now.
    const snap = await sampler.current(60_000);
    expect(snap.at).toBeGreaterThanOrEqual(asked);
    // Busy again: back to one read a refresh.
    const busy = reads.length;
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(settings.refreshMs);
      await sampler.current();
    }
    expect(reads.length - busy).toBeGreaterThanOrEqual(4);
  });
});
