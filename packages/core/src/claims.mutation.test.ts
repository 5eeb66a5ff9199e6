import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Attempt } from './attempt.js';
import { closePipelineApps, LEASE, pipelineSetup, stallable } from './testing/pipeline.js';

// The store claims of a run: a claim that does not answer within the lease gives the delivery back
// and says which call stalled; a claim not acquired is never held (the lease keeper would renew
// it, taking it over); a released claim stays released; a release that stalls is logged and
// does not hold the run up.
afterEach(closePipelineApps);

describe('a store claim that does not answer within the lease', () => {
  it('gives the delivery back (no lapse) and warns naming the claim', async () => {
    const { app, store, fetchOne, run, warnings } = pipelineSetup();
    const stall = stallable(store, ['claimKey']);
    let runs = 0;
    const t = app.task('t', { input: z.object({}) }, () => ++runs);
    const handle = await t.enqueue({}, { idempotencyKey: 'k-silent' });
    stall.stalled = true;
    expect(await run(await fetchOne(), { leaseMs: 200 })).toBe('released');
    expect(runs).toBe(0);
    expect(warnings().map((w) => [w.fields, w.msg])).toEqual([
      [{ taskId: handle.id }, `the result store did not answer (idempotency key claim) for task ${handle.id} within 200 ms (leaseMs); the delivery goes back to the queue`],
    ]);
    expect((await fetchOne()).lapses).toBe(0);
  });
});

describe('claims the lease keeper renews', () => {
  it('a key claim not acquired (held elsewhere) is not among them', async () => {
    const { app, store, queue, fetchOne, run } = pipelineSetup();
    const t = app.task('t', { input: z.object({}) }, () => 1);
    await t.enqueue({}, { idempotencyKey: 'k-held' });
    await store.claimKey({ queue, key: 'k-held' }, 'another-delivery', LEASE);
    const attempt = new Attempt();
    expect(await run(await fetchOne(), { attempt })).toBe('yielded');
    expect(attempt.claims).toEqual([]);
  });

  it('a key given back before a retry stays given back: renewing what is left does not take it again', async () => {
    const { app, store, queue, fetchOne, run } = pipelineSetup();
    const t = app.task('flaky', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 60_000, jitter: false } }, () => {
      throw new Error('try again');
    });
    await t.enqueue({}, { idempotencyKey: 'k-retry' });
    const attempt = new Attempt();
    expect(await run(await fetchOne(), { attempt })).toBe('retrying');
    // What the lease keeper does with the attempt's claims on its next tick.
    for (const claim of attempt.claims) if (!claim.done) await claim.renew(LEASE);
    expect(await store.claimKey({ queue, key: 'k-retry' }, 'the-retry', LEASE)).toEqual({ status: 'acquired' });
  });
});

describe('a claim release that does not answer within the lease', () => {
  it('is logged with the claim and the stall, and the retry still goes out', async () => {
    const { app, broker, store, queue, fetchOne, run, warnings } = pipelineSetup();
    const stall = stallable(store, ['releaseKey']);
    const t = app.task('flaky', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 0, jitter: false } }, () => {
      throw new Error('try again');
    });
    const handle = await t.enqueue({}, { idempotencyKey: 'k-release' });
    stall.stalled = true;
    expect(await run(await fetchOne(), { leaseMs: 200 })).toBe('retrying');
    expect(warnings().map((w) => [w.fields, w.msg])).toEqual([
      [
        {
          taskId: handle.id,
          claim: 'idempotency key',
          err: `StoreStalledError: the result store did not answer (releasing the idempotency key claim) for task ${handle.id} within 200 ms (leaseMs); the delivery goes back to the queue`,
        },
        'could not release a claim; it lapses with its lease',
      ],
    ]);
    expect(await broker.stats(queue)).toMatchObject({ inFlight: 0 });
    expect((await fetchOne()).message.attempt).toBe(2);
  });
});
