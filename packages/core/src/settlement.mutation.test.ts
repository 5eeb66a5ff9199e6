import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { NonRetryableError, LeaseLostError } from './errors.js';
import { MAX_KEPT_PAYLOAD_BYTES } from './settlement.js';
import type { KeyClaim } from './results.js';
import { makeMessage, sleep } from './testing/messages.js';
import { closePipelineApps, gate, intercept, LEASE, pipelineSetup, stallable } from './testing/pipeline.js';

// settleOutcome's and settle's promises: what is stored and for how long, what a failure's reason
// says, a retry never finds its own claims busy, a refusal on a store apart is stored though it
// holds no task claim, a stale owner stores only a keyed success (and says when it cannot).
afterEach(async () => {
  vi.useRealTimers();
  await closePipelineApps();
});

describe('what a success stores', () => {
  it("a keyed task's success is stored even with keepResult off: later deliveries of the key reuse it", async () => {
    const { app, store, queue, fetchOne, run } = pipelineSetup();
    const t = app.task('charge', { input: z.object({}), keepResult: false }, () => 'charged');
    const handle = await t.enqueue({}, { idempotencyKey: 'order-9' });
    expect(await run(await fetchOne())).toBe('succeeded');
    expect(await store.get(handle)).toMatchObject({ state: 'succeeded', value: 'charged' });
    expect(await store.claimKey({ queue, key: 'order-9' }, 'probe', LEASE)).toMatchObject({ status: 'done', record: { value: 'charged' } });
  });

  it('an unkeyed result lives resultTtlMs, not as long as idempotency keys', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { app, store, fetchOne, run } = pipelineSetup({ resultTtlMs: 1_000, idempotencyTtlMs: 60_000 });
    const t = app.task('t', { input: z.object({}) }, () => 'v');
    const handle = await t.enqueue({});
    expect(await run(await fetchOne())).toBe('succeeded');
    expect(await store.get(handle)).toMatchObject({ value: 'v' });
    vi.setSystemTime(Date.now() + 1_001);
    expect(await store.get(handle)).toBeNull();
  });
});

describe('what a record keeps of the payload (keepPayload)', () => {
  /** One success and one failure under `keepPayload`, with the records stored for each. */
  async function outcomes(keepPayload: 'failures' | 'always' | 'never' | undefined, payload: { s: string }) {
    const { app, store, fetchOne, run } = pipelineSetup(keepPayload ? { keepPayload } : {});
    const ok = app.task('ok', { input: z.object({ s: z.string() }) }, () => 'fine');
    const bad = app.task('bad', { input: z.object({ s: z.string() }), retry: { maxAttempts: 1 } }, () => {
      throw new Error('no');
    });
    const [h1, h2] = [await ok.enqueue(payload), await bad.enqueue(payload)];
    expect([await run(await fetchOne()), await run(await fetchOne())]).toEqual(['succeeded', 'failed']);
    return { succeeded: (await store.get(h1))!, failed: (await store.get(h2))! };
  }

  it.each([
    ['failures (the default)', undefined, { succeeded: false, failed: true }],
    ['always', 'always', { succeeded: true, failed: true }],
    ['never', 'never', { succeeded: false, failed: false }],
  ] as const)('%s', async (_, keepPayload, kept) => {
    const { succeeded, failed } = await outcomes(keepPayload, { s: 'x' });
    expect({ succeeded: 'payload' in succeeded, failed: 'payload' in failed }).toEqual(kept);
    if (kept.failed) expect(failed.payload).toEqual({ s: 'x' });
    // Whatever is kept, the rest of the record is there and nothing says a payload was omitted.
    for (const r of [succeeded, failed]) {
      expect(r.enqueuedAt).toEqual(expect.any(Number));
      expect(r.payloadOmitted).toBeUndefined();
    }
  });

  it(`does not keep a payload whose JSON exceeds ${MAX_KEPT_PAYLOAD_BYTES} bytes, and says so; one at the limit is kept`, async () => {
    const over = { s: 'é'.repeat(MAX_KEPT_PAYLOAD_BYTES / 2) }; // 2 bytes each in UTF-8: over the limit in bytes, under it in characters
    const big = await outcomes('always', over);
    for (const r of [big.succeeded, big.failed]) {
      expect(r.payload).toBeUndefined();
      expect(r.payloadOmitted).toBe('too large');
    }
    const exact = { s: 'a'.repeat(MAX_KEPT_PAYLOAD_BYTES - '{"s":""}'.length) };
    const fits = await outcomes('failures', exact);
    expect(fits.failed.payload).toEqual(exact);
    expect(fits.succeeded).not.toHaveProperty('payloadOmitted'); // a success under 'failures' is not measured
  });
});

describe('a failure', () => {
  it('that is non-retryable is dead-lettered at its first attempt, with a reason and an event that say so', async () => {
    const { app, broker, queue, fetchOne, run, events } = pipelineSetup();
    const t = app.task('pay', { input: z.object({}), retry: { maxAttempts: 3 } }, () => {
      throw new NonRetryableError('card reported stolen');
    });
    await t.enqueue({});
    const d = await fetchOne();
    expect(await run(d)).toBe('failed');
    expect((await broker.deadLetters(queue)).map((l) => l.reason)).toEqual(['non-retryable error: card reported stolen']);
    expect(events.filter((e) => e.type !== 'task:started')).toMatchObject([
      { type: 'task:failed', message: d.message, error: { name: 'NonRetryableError', message: 'card reported stolen' }, reason: 'non-retryable error: card reported stolen' },
    ]);
  });

  it('that spent its attempts tells listeners it failed', async () => {
    const { app, fetchOne, run, events } = pipelineSetup();
    const t = app.task('pay', { input: z.object({}), retry: { maxAttempts: 1 } }, () => {
      throw new Error('declined');
    });
    await t.enqueue({});
    expect(await run(await fetchOne())).toBe('failed');
    expect(events.map((e) => e.type)).toEqual(['task:started', 'task:failed']);
    expect(events[1]).toMatchObject({ reason: 'failed after 1 attempt(s): declined' });
  });

  /** Runs a failing attempt, and asks the store, at the moment its retry is sent, whether another delivery could take `claim`. */
  async function probeAtRetry(storeApart: boolean, claim: 'key' | 'task') {
    const { app, store, queue, fetchOne, run } = pipelineSetup({ storeApart });
    const t = app.task('flaky', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 0, jitter: false } }, () => {
      throw new Error('try again');
    });
    await t.enqueue({}, claim === 'key' ? { idempotencyKey: 'k-retry' } : {});
    const d = await fetchOne();
    let seen: KeyClaim | undefined;
    const probed = intercept(d, {
      retry: async (next, at) => {
        seen = claim === 'key' ? await store.claimKey({ queue, key: 'k-retry' }, 'the-retry', LEASE) : await store.claimTask(d.message, 'the-retry', LEASE);
        return d.retry(next, at);
      },
    });
    expect(await run(probed)).toBe('retrying');
    return seen;
  }

  it("that is retried gives its idempotency key back before the retry is sent (the retry never finds it busy)", async () => {
    expect(await probeAtRetry(false, 'key')).toEqual({ status: 'acquired' });
  });

  it('that is retried gives its task claim back before the retry is sent, where the store is apart', async () => {
    expect(await probeAtRetry(true, 'task')).toEqual({ status: 'acquired' });
  });
});

describe('a store apart from the broker', () => {
  it('stores the refusal of a delivery that never took a task claim (unknown task)', async () => {
    const { app, broker, store, queue, fetchOne, run } = pipelineSetup({ storeApart: true });
    app.task('known', { input: z.object({}) }, () => 1);
    const handle = makeMessage(queue, { task: 'unknown-here', payload: {} });
    await broker.publish([handle], { keyTtlMs: LEASE });
    expect(await run(await fetchOne())).toBe('failed');
    expect(await store.get(handle)).toMatchObject({ state: 'failed', error: { name: 'UnknownTaskError' } });
    expect(await broker.deadLetters(queue)).toHaveLength(1);
  });

  it('that stops answering the outcome: the warning names the store call and the lease', async () => {
    const { app, store, fetchOne, run, warnings } = pipelineSetup({ storeApart: true });
    const stall = stallable(store, ['store']);
    const t = app.task('t', { input: z.object({}) }, () => 1);
    const handle = await t.enqueue({});
    stall.stalled = true;
    expect(await run(await fetchOne(), { leaseMs: 200 })).toBe('released');
    expect(warnings().map((w) => [w.fields, w.msg])).toEqual([
      [{ taskId: handle.id }, `the result store did not answer (storing the outcome) for task ${handle.id} within 200 ms (leaseMs); the delivery goes back to the queue`],
    ]);
  });

  it('a run whose task claim another owner took stores nothing and gives its idempotency key back', async () => {
    const { app, store, queue, fetchOne, run } = pipelineSetup({ storeApart: true });
    const t = app.task('pay', { input: z.object({}) }, async (_, ctx) => {
      // The claim moved on while the handler ran (it lapsed and a redelivery took it).
      await store.releaseTask(ctx, token);
      await store.claimTask(ctx, 'new-owner', LEASE);
      return 'stale';
    });
    const handle = await t.enqueue({}, { idempotencyKey: 'k-stale' });
    const d = await fetchOne();
    const token = d.token;
    expect(await run(d)).toBe('lost');
    expect(await store.get(handle)).toBeNull();
    await sleep(20);
    expect(await store.claimKey({ queue, key: 'k-stale' }, 'new-owner', LEASE)).toEqual({ status: 'acquired' });
  });
});

describe('a stale owner (the broker refused its settlement: the lease moved on)', () => {
  /** A run whose handler ends after its lease lapsed and another delivery took the message. */
  async function staleRun(outcome: 'succeeds' | 'fails', options: { keyed: boolean; maxAttempts: number }) {
    const setup = pipelineSetup();
    const { app, fetchOne, run } = setup;
    const done = gate();
    const t = app.task('pay', { input: z.object({}), retry: { maxAttempts: options.maxAttempts } }, async () => {
      await done.opened;
      if (outcome === 'fails') throw new Error('stale failure');
      return 'stale value';
    });
    const handle = await t.enqueue({}, options.keyed ? { idempotencyKey: 'k-late' } : {});
    const stale = run(await fetchOne(50));
    await sleep(120); // its 50 ms broker lease lapses
    const next = await fetchOne();
    done.open();
    return { ...setup, handle, stale, next };
  }

  it("records a keyed success under its key, so the new owner reuses it instead of running again", async () => {
    const { store, handle, stale, next, run } = await staleRun('succeeds', { keyed: true, maxAttempts: 2 });
    expect(await stale).toBe('lost');
    expect(await store.get(handle)).toMatchObject({ state: 'succeeded', value: 'stale value' });
    expect(await run(next)).toBe('duplicate');
  });

  it('does not record an unkeyed success: the outcome belongs to the new owner', async () => {
    const { store, handle, stale, next, run } = await staleRun('succeeds', { keyed: false, maxAttempts: 2 });
    expect(await stale).toBe('lost');
    expect(await store.get(handle)).toBeNull();
    expect(await run(next)).toBe('succeeded');
    expect(await store.get(handle)).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  it('does not record a keyed failure', async () => {
    const { store, handle, stale } = await staleRun('fails', { keyed: true, maxAttempts: 1 }); // its last attempt: a dead letter with a record
    expect(await stale).toBe('lost');
    expect(await store.get(handle)).toBeNull();
  });

  it('warns, naming the store call, when the store does not answer that record in time', async () => {
    const { app, store, fetchOne, run, warnings } = pipelineSetup();
    const t = app.task('pay', { input: z.object({}) }, () => 'done');
    const handle = await t.enqueue({}, { idempotencyKey: 'k-silent' });
    const d = await fetchOne();
    const stall = stallable(store, ['store']);
    stall.stalled = true;
    const refused = intercept(d, { ack: () => Promise.reject(new LeaseLostError(d.message.id)) });
    expect(await run(refused, { leaseMs: 200 })).toBe('lost');
    expect(warnings().map((w) => [w.fields, w.msg])).toEqual([
      [
        { taskId: handle.id, err: `StoreStalledError: the result store did not answer (storing the outcome of a stale owner) for task ${handle.id} within 200 ms (leaseMs); the delivery goes back to the queue` },
        'could not record the success of a stale owner under its key; the key runs again',
      ],
      [{ taskId: handle.id }, expect.stringContaining(handle.id)],
    ]);
  });
});
