import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { closePipelineApps, LEASE, pipelineSetup } from './testing/pipeline.js';
import type { Delivery } from './broker.js';
import { makeMessage } from './testing/messages.js';

// The admission steps' promises (before a handler runs): expiry is "past expiresAt", and each
// refusal stores why, dead-letters with the reason and tells listeners; a delivery whose task
// already holds a stored failure (store apart) is dead-lettered with that failure, not run.
afterEach(async () => {
  vi.useRealTimers();
  await closePipelineApps();
});

describe('notExpired', () => {
  it('still runs a task at the very millisecond of its expiresAt (expired means past it)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { app, fetchOne, run } = pipelineSetup();
    const t = app.task('soon', { input: z.object({}) }, () => 'ran');
    const expiresAt = Date.now() + 60_000;
    const handle = await t.enqueue({}, { expiresAt });
    const d = await fetchOne();
    vi.setSystemTime(expiresAt);
    expect(await run(d)).toBe('succeeded');
    expect(await handle.result({ timeoutMs: 100 })).toBe('ran');
  });

  it('stores an expired task as expired with a TaskExpiredError naming the time, and tells listeners', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { app, fetchOne, run, events } = pipelineSetup();
    let runs = 0;
    const t = app.task('soon', { input: z.object({}) }, () => ++runs);
    const expiresAt = Date.now() + 1_000;
    const handle = await t.enqueue({}, { expiresAt });
    const d = await fetchOne();
    vi.setSystemTime(expiresAt + 1);
    expect(await run(d)).toBe('expired');
    expect(runs).toBe(0);
    const error = { name: 'TaskExpiredError', message: `task expired at ${new Date(expiresAt).toISOString()} before it ran` };
    await expect(handle.result({ timeoutMs: 100 })).rejects.toMatchObject({ state: 'expired', error });
    expect(events).toEqual([{ type: 'task:failed', message: d.message, attempt: 1, error, reason: error.message }]);
  });
});

describe('refusals store and dead-letter their error', () => {
  it('an invalid payload carries the INVALID_PAYLOAD code', async () => {
    const { app, broker, queue, fetchOne, run } = pipelineSetup();
    app.task('sum', { input: z.object({ n: z.number() }) }, () => 1);
    const message = makeMessage(queue, { task: 'sum', payload: { n: 'one' } });
    await broker.publish([message], { keyTtlMs: LEASE });
    expect(await run(await fetchOne())).toBe('failed');
    const [dead] = await broker.deadLetters(queue);
    expect(dead!.error).toMatchObject({ name: 'ValidationError', code: 'INVALID_PAYLOAD' });
    expect(await broker.results.get(message)).toMatchObject({ state: 'failed', error: { code: 'INVALID_PAYLOAD' } });
  });

  it('a message past maxAttempts made elsewhere is stored failed with a TaskLapsedError', async () => {
    const { app, broker, queue, fetchOne, run, events } = pipelineSetup();
    app.task('t', { input: z.object({}) }, () => 1);
    const message = makeMessage(queue, { task: 't', payload: {}, attempt: 4, maxAttempts: 3 });
    await broker.publish([message], { keyTtlMs: LEASE });
    expect(await run(await fetchOne())).toBe('failed');
    const error = { name: 'TaskLapsedError', message: 'attempt 4 is past maxAttempts 3: no attempt left to run' };
    expect(await broker.results.get(message)).toMatchObject({ state: 'failed', error });
    expect((await broker.deadLetters(queue))[0]!.error).toMatchObject(error);
    expect(events).toMatchObject([{ type: 'task:failed', error, reason: error.message }]);
  });
});

describe('claimTaskId: a task whose failure an earlier delivery stored (store apart from the broker)', () => {
  /** An earlier delivery stored `record`'s failure, then ended (crash, lost lease) before dead-lettering it. */
  async function storedFailure(error: { name: string; message: string } | undefined) {
    const setup = pipelineSetup({ storeApart: true });
    const { app, store, queue } = setup;
    let runs = 0;
    const t = app.task('charge', { input: z.object({}) }, () => ++runs);
    const handle = await t.enqueue({});
    const record = { id: handle.id, queue, task: 'charge', state: 'failed' as const, ...(error ? { error } : {}), attempts: 3, finishedAt: Date.now(), idempotencyKey: null };
    await store.store({ record, ttlMs: LEASE, keyTtlMs: LEASE });
    const d = await setup.fetchOne();
    return { ...setup, handle, d, runs: () => runs };
  }

  it('dead-letters it with the stored error, without running it again, and tells listeners', async () => {
    const error = { name: 'TypeError', message: 'card declined' };
    const { broker, store, queue, handle, d, run, runs, events } = await storedFailure(error);
    expect(await run(d)).toBe('failed');
    expect(runs()).toBe(0);
    const reason = 'failed after 3 attempt(s): card declined (stored by an earlier delivery that ended before dead-lettering it)';
    expect((await broker.deadLetters(queue)).map((l) => ({ reason: l.reason, error: l.error }))).toEqual([{ reason, error }]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 0, delayed: 0, inFlight: 0 });
    expect(events).toEqual([{ type: 'task:failed', message: d.message, attempt: 1, error, reason }]);
    expect(await store.get(handle)).toMatchObject({ state: 'failed', error });
  });

  it('says no error was recorded when the stored failure has none', async () => {
    const { broker, queue, d, run, events } = await storedFailure(undefined);
    expect(await run(d)).toBe('failed');
    const error = { name: 'Error', message: 'no error was recorded' };
    const reason = 'failed after 3 attempt(s): no error was recorded (stored by an earlier delivery that ended before dead-lettering it)';
    expect((await broker.deadLetters(queue)).map((l) => ({ reason: l.reason, error: l.error }))).toEqual([{ reason, error }]);
    expect(events).toEqual([{ type: 'task:failed', message: d.message, attempt: 1, error, reason }]);
  });
});

describe('claimIdempotencyKey: a keyed duplicate', () => {
  it("stores the key's outcome under its own id with its own payload, enqueue time and worker, and no start time", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { app, broker, store, queue, fetchOne, run } = pipelineSetup({ keepPayload: 'always' });
    let runs = 0;
    const t = app.task('charge', { input: z.object({ n: z.number() }) }, ({ n }) => (++runs, `charged ${n}`));
    const first = await t.enqueue({ n: 1 }, { idempotencyKey: 'order-1' });
    expect(await run(await fetchOne(), { worker: 'worker-a' })).toBe('succeeded');
    // A second message under the key that got past publish (as with per-process dedup).
    await t.enqueue({ n: 2 }, { idempotencyKey: 'elsewhere' });
    const d = await fetchOne();
    // Enqueued after the original finished: its record must not say it finished before it was enqueued.
    const second = { ...d.message, idempotencyKey: 'order-1', createdAt: d.message.createdAt + 5_000 };
    vi.setSystemTime(second.createdAt + 1_000);
    const delivery: Delivery = { message: second, token: d.token, lapses: 0, ack: (x) => d.ack(x), retry: (n, at) => d.retry(n, at), deadLetter: (r, x, e) => d.deadLetter(r, x, e), release: (at) => d.release(at) };
    expect(await run(delivery, { worker: 'worker-b' })).toBe('duplicate');
    expect(runs).toBe(1);
    const original = (await store.get(first))!;
    const dup = (await store.get(second))!;
    expect(dup).toMatchObject({ id: second.id, state: 'succeeded', value: 'charged 1', payload: { n: 2 }, enqueuedAt: second.createdAt, worker: 'worker-b' });
    expect(dup.startedAt).toBeUndefined();
    expect(dup.finishedAt).toBeGreaterThanOrEqual(original.finishedAt);
    expect(dup.finishedAt).toBeGreaterThanOrEqual(dup.enqueuedAt!);
    expect(original).toMatchObject({ payload: { n: 1 }, worker: 'worker-a', startedAt: expect.any(Number) });
  });
});
