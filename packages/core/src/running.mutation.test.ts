import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { Attempt } from './attempt.js';
import { LeaseLostError } from './errors.js';
import { sleep } from './testing/messages.js';
import { closePipelineApps, gate, pipelineSetup } from './testing/pipeline.js';

// runHandler's promises: an attempt aborted before its handler starts never runs it; the output
// schema and JSON are checked before anything is stored; the duration reported is the handler's;
// a lease lost while it runs ends the run as `lost` and gives the message back; a time limit the
// handler beat never aborts it afterwards.
afterEach(async () => {
  vi.useRealTimers();
  await closePipelineApps();
});

describe('an attempt aborted before its handler starts', () => {
  it('by a hard stop: the handler never runs and the message goes back unchanged (no lapse counted)', async () => {
    const { app, broker, queue, fetchOne, run, events } = pipelineSetup();
    let runs = 0;
    const t = app.task('t', { input: z.object({}) }, () => ++runs);
    await t.enqueue({});
    const attempt = new Attempt();
    attempt.abort(new Error('worker stopping now'));
    expect(await run(await fetchOne(), { attempt })).toBe('released');
    expect(runs).toBe(0);
    expect(events).toEqual([]);
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, inFlight: 0 });
    expect((await fetchOne()).lapses).toBe(0);
  });

  it('by a lost lease: the handler never runs and the run ends as lost', async () => {
    const { app, fetchOne, run, events } = pipelineSetup();
    let runs = 0;
    const t = app.task('t', { input: z.object({}) }, () => ++runs);
    const handle = await t.enqueue({});
    const attempt = new Attempt();
    attempt.abort(new LeaseLostError(handle.id));
    expect(await run(await fetchOne(), { attempt })).toBe('lost');
    expect(runs).toBe(0);
    expect(events).toEqual([]);
  });
});

describe("the handler's value", () => {
  it('that fits the output schema is stored', async () => {
    const { app, fetchOne, run } = pipelineSetup();
    const t = app.task('count', { input: z.object({}), output: z.number() }, () => 3);
    const handle = await t.enqueue({});
    expect(await run(await fetchOne())).toBe('succeeded');
    expect(await handle.result({ timeoutMs: 100 })).toBe(3);
  });

  it('that fails the output schema dead-letters the task at once (no retry), saying why', async () => {
    const { app, broker, queue, fetchOne, run } = pipelineSetup();
    let runs = 0;
    const t = app.task('count', { input: z.object({}), output: z.number(), retry: { maxAttempts: 3 } }, () => (++runs, 'three' as unknown as number));
    const handle = await t.enqueue({});
    expect(await run(await fetchOne())).toBe('failed');
    expect(runs).toBe(1);
    const [dead] = await broker.deadLetters(queue);
    expect(dead!.reason).toMatch(/^non-retryable error: task "count" returned a value that fails its output schema: /);
    await expect(handle.result({ timeoutMs: 100 })).rejects.toMatchObject({ state: 'failed', error: { name: 'NonRetryableError' } });
  });

  it('that is not JSON-serialisable dead-letters the task at once, saying why', async () => {
    const { app, broker, queue, fetchOne, run } = pipelineSetup();
    const t = app.task('big', { input: z.object({}), retry: { maxAttempts: 3 } }, () => 10n);
    await t.enqueue({});
    expect(await run(await fetchOne())).toBe('failed');
    const [dead] = await broker.deadLetters(queue);
    expect(dead!.reason).toMatch(/^non-retryable error: task "big" returned a value that is not JSON-serialisable: ./);
  });

  it("is reported with the handler's own duration", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { app, fetchOne, run, events } = pipelineSetup();
    const t = app.task('slow', { input: z.object({}) }, () => {
      vi.setSystemTime(Date.now() + 250);
      return 'done';
    });
    await t.enqueue({});
    expect(await run(await fetchOne())).toBe('succeeded');
    expect(events.find((e) => e.type === 'task:succeeded')).toMatchObject({ value: 'done', durationMs: 250 });
  });
});

describe('an attempt aborted while its handler runs', () => {
  it('by a lost lease: ends as lost, stores nothing, and gives the still-leased message back (no lapse)', async () => {
    const { app, broker, store, queue, fetchOne, run } = pipelineSetup();
    const started = gate();
    const t = app.task('long', { input: z.object({}) }, (_, ctx) => {
      started.open();
      return new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
    });
    const handle = await t.enqueue({});
    const attempt = new Attempt();
    const running = run(await fetchOne(), { attempt });
    await started.opened;
    attempt.abort(new LeaseLostError(handle.id));
    expect(await running).toBe('lost');
    expect(await store.get(handle)).toBeNull();
    expect(await broker.stats(queue)).toMatchObject({ ready: 1, inFlight: 0 });
    expect((await fetchOne()).lapses).toBe(0);
  });
});

describe('a time limit', () => {
  it('that the handler beat never aborts the attempt afterwards', async () => {
    const { app, fetchOne, run } = pipelineSetup();
    let signal: AbortSignal | undefined;
    const t = app.task('quick', { input: z.object({}), timeoutMs: 30 }, (_, ctx) => {
      signal = ctx.signal;
      return 'in time';
    });
    await t.enqueue({});
    const attempt = new Attempt();
    expect(await run(await fetchOne(), { attempt })).toBe('succeeded');
    await sleep(100); // well past the time limit
    expect(attempt.aborted).toBe(false);
    expect(signal!.aborted).toBe(false);
  });
});
