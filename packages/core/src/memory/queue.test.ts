import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_BROKER_OPTIONS } from '../broker.js';
import { makeMessage, uniqueQueue } from '../testing/messages.js';
import { MemoryBroker } from './broker.js';

// The memory queue as a user of the memory broker sees it: task states, stats, when a waiting
// consumer wakes, dead-letter retention. A fake clock makes every due time exact.
const T0 = Date.UTC(2026, 0, 1);
const LEASE = 1_000;
const keyTtlMs = 60_000;

let broker: MemoryBroker;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: T0 });
  broker = new MemoryBroker({ ...DEFAULT_BROKER_OPTIONS, deadLetters: { maxCount: 100, maxAgeMs: 10_000 } });
});
afterEach(async () => {
  await broker.close();
  vi.useRealTimers();
});

async function takeOne(queue: string, leaseMs = LEASE) {
  const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs, waitMs: 0 });
  if (!d) throw new Error(`nothing ready on ${queue}`);
  return d;
}

describe('memory queue: task states', () => {
  it('shows a delayed task as scheduled, then pending once due', async () => {
    const queue = uniqueQueue('mq');
    const m = makeMessage(queue, { eta: T0 + 5_000 });
    await broker.publish([m], { keyTtlMs });
    expect(await broker.state(m)).toBe('scheduled');
    vi.setSystemTime(T0 + 5_000);
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, delayed: 0 });
    expect(await broker.state(m)).toBe('pending');
  });

  it('shows a task waiting for its next attempt as retrying, before and after the retry is due', async () => {
    const queue = uniqueQueue('mq');
    const now = makeMessage(queue);
    const later = makeMessage(queue);
    await broker.publish([now, later], { keyTtlMs });
    const a = await takeOne(queue);
    const b = await takeOne(queue);
    await a.retry({ ...a.message, attempt: 2 }, T0); // retry at once
    await b.retry({ ...b.message, attempt: 2 }, T0 + 2_000); // retry with a back-off
    expect(await broker.state(now)).toBe('retrying');
    expect(await broker.state(later)).toBe('retrying');
    vi.setSystemTime(T0 + 2_000);
    expect(await broker.stats(queue)).toMatchObject({ ready: 2, delayed: 0 });
    expect(await broker.state(later)).toBe('retrying');
  });

  it('puts a task whose lease lapsed back to pending after exactly leaseMs, counted as ready', async () => {
    const queue = uniqueQueue('mq');
    const m = makeMessage(queue);
    await broker.publish([m], { keyTtlMs });
    await takeOne(queue);
    expect(await broker.state(m)).toBe('active');
    vi.setSystemTime(T0 + LEASE - 1);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, inFlight: 1 });
    vi.setSystemTime(T0 + LEASE);
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, inFlight: 0 });
    expect(await broker.state(m)).toBe('pending');
    const again = await takeOne(queue);
    expect([again.message.id, again.lapses]).toEqual([m.id, 1]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, inFlight: 1 });
  });
});

describe('memory queue: peek', () => {
  it('lists a task whose lease lapsed first in its priority, as the next fetch takes it, and a delayed one until exactly its eta', async () => {
    const queue = uniqueQueue('mq');
    const [lapsed, waiting, urgent] = [makeMessage(queue), makeMessage(queue), makeMessage(queue, { priority: 3 })];
    await broker.publish([lapsed], { keyTtlMs });
    await takeOne(queue);
    const delayed = makeMessage(queue, { eta: T0 + 2_000 });
    await broker.publish([waiting, urgent, delayed], { keyTtlMs });
    const ids = async (state: 'ready' | 'delayed') => (await broker.peek(queue, { state, limit: 10 })).map((m) => m.id);
    expect(await ids('ready')).toEqual([urgent.id, waiting.id]);
    vi.setSystemTime(T0 + LEASE);
    expect(await ids('ready')).toEqual([urgent.id, lapsed.id, waiting.id]);
    expect(await broker.peek(queue, { state: 'delayed', limit: 10 })).toEqual([delayed]);
    vi.setSystemTime(T0 + 2_000);
    expect(await ids('delayed')).toEqual([]);
    expect(await ids('ready')).toEqual([urgent.id, lapsed.id, waiting.id, delayed.id]);
    const taken = await broker.fetch({ queues: [queue], max: 10, leaseMs: LEASE, waitMs: 0 });
    expect(taken.map((d) => d.message.id)).toEqual([urgent.id, lapsed.id, waiting.id, delayed.id]);
  });
});

describe('memory queue: a waiting consumer', () => {
  it('wakes when the earliest lease lapses, not at the end of its wait nor at a later lease', async () => {
    const queue = uniqueQueue('mq');
    const early = makeMessage(queue);
    const late = makeMessage(queue);
    await broker.publish([early, late], { keyTtlMs });
    await takeOne(queue, 1_000); // a consumer that will die
    await takeOne(queue, 5_000); // another one, with a longer lease
    let got: string[] | undefined;
    void broker.fetch({ queues: [queue], max: 10, leaseMs: LEASE, waitMs: 30_000 }).then((ds) => (got = ds.map((d) => d.message.id)));
    await vi.advanceTimersByTimeAsync(999);
    expect(got).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(got).toEqual([early.id]);
  });
});

describe('memory queue: dead letters', () => {
  it('counts each dead letter as failed, whether dead-lettered by core or unreadable on arrival', async () => {
    const queue = uniqueQueue('mq');
    await broker.publish([makeMessage(queue)], { keyTtlMs });
    const d = await takeOne(queue);
    await d.deadLetter('max attempts reached');
    broker.injectRaw(queue, '{ not json');
    expect(await broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 })).toEqual([]);
    expect(await broker.stats(queue)).toMatchObject({ dead: 2, failed: 2, completed: 0 });
  });

  it('keeps a dead letter for exactly maxAgeMs', async () => {
    const queue = uniqueQueue('mq');
    await broker.publish([makeMessage(queue)], { keyTtlMs });
    await (await takeOne(queue)).deadLetter('max attempts reached');
    vi.setSystemTime(T0 + 10_000);
    expect(await broker.deadLetters(queue)).toHaveLength(1);
    vi.setSystemTime(T0 + 10_001);
    expect(await broker.deadLetters(queue)).toEqual([]);
  });
});
