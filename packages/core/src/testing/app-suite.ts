import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App, type Connection } from '../app.js';
import { Attempt } from '../attempt.js';
import { NonRetryableError, TaskFailedError } from '../errors.js';
import { runDelivery, type RunOutcome } from '../execution.js';
import type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';

const LEASE = 30_000;

/**
 * The task rules on top of a broker (retries, dead letters, expiry, idempotency, results), run
 * through `runDelivery` — the same path the worker takes — one delivery at a time.
 */
export function describeTaskRules(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  const shortLease = options.shortLeaseMs ?? 250;

  describe(`${name}: task rules`, () => {
    let fx: BrokerFixture;
    beforeAll(async () => {
      fx = await factory();
    });
    afterAll(async () => fx?.close());

    function setup() {
      const queue = uniqueQueue('ct');
      const app = createApp({ broker: fx.broker, ...(fx.results ? { results: fx.results } : {}), defaultQueue: queue });
      return { app, queue };
    }

    /** Fetches one delivery (waiting up to `waitMs`) and runs it like a worker would. */
    async function runOne(app: App, queue: string, waitMs = 5_000, leaseMs = LEASE): Promise<RunOutcome | null> {
      const conn = await app.connection();
      const [d] = await conn.broker.fetch({ queues: [queue], max: 1, leaseMs, waitMs });
      return d ? runDelivery(app, conn, d, { attempt: new Attempt(), leaseMs: LEASE }) : null;
    }

    it('runs a task and returns its typed result; state goes pending → succeeded', async () => {
      const { app, queue } = setup();
      const add = app.task('math.add', { input: z.object({ a: z.number(), b: z.number() }) }, ({ a, b }) => a + b);
      const handle = await add.enqueue({ a: 1, b: 2 });
      expect(handle.duplicate).toBe(false);
      expect(await handle.state()).toBe('pending');
      const waiting = handle.result({ timeoutMs: 10_000 });
      expect(await runOne(app, queue)).toBe('succeeded');
      expect(await waiting).toBe(3);
      expect(await handle.state()).toBe('succeeded');
    });

    it('rejects an invalid payload at enqueue with the field and the rule, sending nothing', async () => {
      const { app, queue } = setup();
      const add = app.task('math.add', { input: z.object({ a: z.number(), b: z.number() }) }, ({ a, b }) => a + b);
      await expect(add.enqueue({ a: 1, b: 'two' } as never)).rejects.toThrow(/invalid payload for task "math.add": b: /);
      await expect(add.enqueue({ a: 1, b: 2 }, { priority: 12 })).rejects.toThrow(/priority/);
      expect((await (await app.connection()).broker.stats(queue)).ready).toBe(0);
    });

    it('retries with backoff, then succeeds, carrying the attempt number', async () => {
      const { app, queue } = setup();
      const attempts: number[] = [];
      const flaky = app.task('flaky', { input: z.object({}), retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 200, jitter: false } }, (_, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 3) throw new Error(`fail #${ctx.attempt}`);
        return 'ok';
      });
      const handle = await flaky.enqueue({});
      // Taken before the first run, so before the retry's due time is set (200 ms after it): taken
      // after the state round trip below, a slow round trip on a loaded machine ate the margin.
      const firstRunAt = Date.now();
      expect(await runOne(app, queue)).toBe('retrying');
      expect(await handle.state()).toMatch(/retrying|scheduled|pending/);
      expect(await runOne(app, queue)).toBe('retrying');
      expect(Date.now() - firstRunAt).toBeGreaterThanOrEqual(150);
      expect(await runOne(app, queue)).toBe('succeeded');
      expect(attempts).toEqual([1, 2, 3]);
      expect(await handle.result({ timeoutMs: 5_000 })).toBe('ok');
    });

    it('dead-letters after max attempts; result() rejects with the last error', async () => {
      const { app, queue } = setup();
      const doomed = app.task('doomed', { input: z.object({}), retry: { maxAttempts: 2, delayMs: 10, jitter: false } }, (_, ctx) => {
        throw new Error(`broken on attempt ${ctx.attempt}`);
      });
      const handle = await doomed.enqueue({});
      expect(await runOne(app, queue)).toBe('retrying');
      expect(await runOne(app, queue)).toBe('failed');
      const err = await handle.result({ timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskFailedError);
      expect((err as TaskFailedError).error?.message).toBe('broken on attempt 2');
      expect(await handle.state()).toBe('failed');
      const dead = await (await app.connection()).broker.deadLetters(queue);
      expect(dead.map((d) => d.reason)).toEqual(['failed after 2 attempt(s): broken on attempt 2']);
    });

    it('ends retries at once on NonRetryableError', async () => {
      const { app, queue } = setup();
      const t = app.task('refuse', { input: z.object({}), retry: { maxAttempts: 5 } }, () => {
        throw new NonRetryableError('card declined');
      });
      const handle = await t.enqueue({});
      expect(await runOne(app, queue)).toBe('failed');
      await expect(handle.result({ timeoutMs: 5_000 })).rejects.toThrow(/card declined/);
    });

    it('does not run an expired task; it ends as expired', async () => {
      const { app, queue } = setup();
      let ran = 0;
      const t = app.task('late', { input: z.object({}) }, () => ++ran);
      const handle = await t.enqueue({}, { expiresInMs: 1 });
      await sleep(20);
      expect(await runOne(app, queue)).toBe('expired');
      expect(ran).toBe(0);
      expect(await handle.state()).toBe('expired');
      await expect(handle.result({ timeoutMs: 5_000 })).rejects.toMatchObject({ state: 'expired' });
    });

    it('fails an attempt that ignores its signal past timeoutMs, and retries it', async () => {
      const { app, queue } = setup();
      let aborted: unknown;
      const t = app.task('stubborn', { input: z.object({}), timeoutMs: 50, retry: { maxAttempts: 2, delayMs: 10, jitter: false } }, async (_, ctx) => {
        ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason));
        await sleep(ctx.attempt === 1 ? 400 : 0);
        return ctx.attempt;
      });
      const handle = await t.enqueue({});
      expect(await runOne(app, queue)).toBe('retrying');
      expect(aborted).toMatchObject({ code: 'TASK_TIMEOUT' });
      expect(await runOne(app, queue)).toBe('succeeded');
      expect(await handle.result({ timeoutMs: 5_000 })).toBe(2);
    });

    it('dead-letters a message whose payload fails validation at the worker, with the reason', async () => {
      const { app, queue } = setup();
      let ran = 0;
      app.task('typed', { input: z.object({ n: z.number() }) }, () => ++ran);
      const msg = makeMessage(queue, { task: 'typed', payload: { n: 'not a number' } });
      await (await app.connection()).broker.publish([msg], { keyTtlMs: 60_000 });
      expect(await runOne(app, queue)).toBe('failed');
      expect(ran).toBe(0);
      const dead = await (await app.connection()).broker.deadLetters(queue);
      expect(dead[0]!.reason).toMatch(/invalid payload for task "typed": n: /);
      await expect(app.getTask('typed')!.handle(msg.id).result({ timeoutMs: 5_000 })).rejects.toBeInstanceOf(TaskFailedError);
    });

    it('dead-letters a message for an unknown task, naming the fix', async () => {
      const { app, queue } = setup();
      const msg = makeMessage(queue, { task: 'nobody.home' });
      await (await app.connection()).broker.publish([msg], { keyTtlMs: 60_000 });
      expect(await runOne(app, queue)).toBe('failed');
      const dead = await (await app.connection()).broker.deadLetters(queue);
      expect(dead[0]!.reason).toMatch(/unknown task "nobody.home": register it with app.task/);
      expect(JSON.parse(dead[0]!.raw)).toMatchObject({ id: msg.id });
    });

    it('enqueues once per idempotency key and returns the first handle', async () => {
      const { app, queue } = setup();
      let runs = 0;
      const charge = app.task('charge', { input: z.object({ cents: z.number() }) }, ({ cents }) => ({ charged: cents, run: ++runs }));
      const first = await charge.enqueue({ cents: 500 }, { idempotencyKey: 'order-42' });
      const second = await charge.enqueue({ cents: 500 }, { idempotencyKey: 'order-42' });
      expect(second.id).toBe(first.id);
      expect(second.duplicate).toBe(true);
      expect(await runOne(app, queue)).toBe('succeeded');
      expect(await runOne(app, queue, 300)).toBeNull();
      expect(await second.result({ timeoutMs: 5_000 })).toEqual({ charged: 500, run: 1 });
      expect(runs).toBe(1);
    });

    it('never runs a keyed task twice when two deliveries overlap; the late one reuses the stored success', async () => {
      const { app, queue } = setup();
      let runs = 0;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      const t = app.task('once', { input: z.object({}) }, async () => {
        runs++;
        await gate;
        return 'done';
      });
      const handle = await t.enqueue({}, { idempotencyKey: 'pay-1' });
      const conn: Connection = await app.connection();
      const [a] = await conn.broker.fetch({ queues: [queue], max: 1, leaseMs: shortLease, waitMs: 2_000 });
      const runA = runDelivery(app, conn, a!, { attempt: new Attempt(), leaseMs: LEASE });
      // A holds the key before B comes (else B would take the key and wait on the gate for good).
      await expect.poll(() => runs, { timeout: 5_000 }).toBe(1);
      await sleep(shortLease * 2);
      // A's lease lapsed while its handler still runs: the broker hands the message to B.
      const [b] = await conn.broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: shortLease * 8 });
      expect(b?.message.id).toBe(handle.id);
      expect(await runDelivery(app, conn, b!, { attempt: new Attempt(), leaseMs: LEASE })).toBe('yielded');
      open();
      expect(await runA).toBe('lost');
      expect(await runOne(app, queue, 5_000)).toBe('duplicate');
      expect(runs).toBe(1);
      expect(await handle.result({ timeoutMs: 5_000 })).toBe('done');
    });

    it('result() waits for a task that finishes later, and times out with a clear error', async () => {
      const { app, queue } = setup();
      const t = app.task('slow', { input: z.object({}) }, () => 'late');
      const handle = await t.enqueue({});
      await expect(handle.result({ timeoutMs: 100 })).rejects.toMatchObject({ code: 'RESULT_TIMEOUT' });
      const waiting = handle.result({ timeoutMs: 10_000 });
      await sleep(100);
      await runOne(app, queue);
      expect(await waiting).toBe('late');
    });

    it('delays a task by delayMs and keeps its priority', async () => {
      const { app, queue } = setup();
      const t = app.task('later', { input: z.object({}) }, () => 1);
      const enqueuedAt = Date.now();
      const handle = await t.enqueue({}, { delayMs: 300, priority: 7 });
      if ((await app.connection()).broker.capabilities.taskStates) expect(await handle.state()).toBe('scheduled');
      // Whichever fetch runs it, 300 ms have passed by then. (Not "the first fetch gets nothing":
      // on a loaded machine the round trips above can outlast the delay.)
      const early = await runOne(app, queue, 0);
      expect(early ?? (await runOne(app, queue, 5_000))).toBe('succeeded');
      expect(Date.now() - enqueuedAt).toBeGreaterThanOrEqual(300);
    });

    it('puts a raw malformed message into the dead-letter place instead of running or dropping it', async () => {
      const { app, queue } = setup();
      await fx.injectRaw(queue, JSON.stringify({ ...makeMessage(queue), v: 2 }));
      expect(await runOne(app, queue, 300)).toBeNull();
      const dead = await (await app.connection()).broker.deadLetters(queue);
      expect(dead).toHaveLength(1);
      expect(dead[0]!.reason).toMatch(/malformed message/);
    });
  });
}

