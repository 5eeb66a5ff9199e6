import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Attempt } from './attempt.js';
import { TaskTimeoutError } from './errors.js';
import { sleep } from './testing/messages.js';
import { closePipelineApps, intercept, pipelineSetup } from './testing/pipeline.js';

// An attempt's abort switch as handlers and the worker see it: ctx.signal is one signal, aborted
// even when read after the abort; the first reason sticks; race() rejects at once once aborted;
// the run marks the attempt as settling when (and only when) it settles its delivery, which is how
// the lease keeper tells a renewal refused by our own ack from a lost lease.
afterEach(closePipelineApps);

describe('the signal a handler reads', () => {
  it('is one signal however often it is read, so a listener added early hears the abort', () => {
    const attempt = new Attempt();
    const heard: unknown[] = [];
    attempt.signal.addEventListener('abort', () => heard.push(attempt.signal.reason));
    expect(attempt.signal).toBe(attempt.signal);
    attempt.abort(new TaskTimeoutError(100));
    expect(heard).toEqual([expect.any(TaskTimeoutError)]);
  });

  it('is already aborted, with the reason, when first read after the abort (a time limit that fired first)', async () => {
    const { app, fetchOne, run } = pipelineSetup();
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const t = app.task('late-reader', { input: z.object({}), timeoutMs: 20, retry: { maxAttempts: 1 } }, async (_, ctx) => {
      await sleep(60); // the time limit fires before the handler looks at its signal
      seen = { aborted: ctx.signal.aborted, reason: ctx.signal.reason };
    });
    await t.enqueue({});
    expect(await run(await fetchOne())).toBe('failed');
    await sleep(80);
    expect(seen).toEqual({ aborted: true, reason: expect.any(TaskTimeoutError) });
  });
});

describe('aborting', () => {
  it('keeps the first reason: a hard stop after a time limit does not turn the timeout into a stop', () => {
    const attempt = new Attempt();
    const timeout = new TaskTimeoutError(100);
    attempt.abort(timeout);
    attempt.abort(new Error('worker stopping now'));
    expect(attempt.reason).toBe(timeout);
    expect(attempt.signal.reason).toBe(timeout);
  });

  it('makes a later race() reject at once with the reason, whatever the work does', async () => {
    const attempt = new Attempt();
    const reason = new Error('worker stopping now');
    attempt.abort(reason);
    await expect(attempt.race(new Promise(() => {}))).rejects.toBe(reason);
  });
});

describe('settling', () => {
  it('is false while the handler runs and true from the moment the delivery is acked', async () => {
    const { app, fetchOne, run } = pipelineSetup();
    const attempt = new Attempt();
    const seen: Record<string, boolean> = {};
    const t = app.task('t', { input: z.object({}) }, () => {
      seen.handler = attempt.settling;
      return 1;
    });
    await t.enqueue({});
    const d = await fetchOne();
    const watched = intercept(d, {
      ack: (s) => {
        seen.ack = attempt.settling;
        return d.ack(s);
      },
    });
    expect(await run(watched, { attempt })).toBe('succeeded');
    expect(seen).toEqual({ handler: false, ack: true });
  });
});
