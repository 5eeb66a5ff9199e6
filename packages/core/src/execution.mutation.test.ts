import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { Attempt } from './attempt.js';
import type { Delivery } from './broker.js';
import { runDelivery } from './execution.js';
import type { Logger } from './logger.js';
import { MemoryBroker } from './memory/broker.js';
import { LeaseLostError } from './errors.js';
import { makeMessage, uniqueQueue } from './testing/messages.js';

// runDelivery's own promises (the steps have theirs in execution.test.ts): a throwing event
// listener never decides a task's fate, a refused settlement ends as `lost`, other settlement
// errors reach the worker, the handler's part always ends, claims are given back.
const LEASE = 30_000;
const apps: App[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

function setup() {
  const broker = new MemoryBroker();
  const queue = uniqueQueue('exr');
  const logs: { level: string; fields: object; msg: string }[] = [];
  const at = (level: string) => (fields: object | string, msg?: string) => void logs.push({ level, fields: fields as object, msg: msg ?? '' });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const app = createApp({ broker, defaultQueue: queue, logger });
  apps.push(app);
  const take = async (): Promise<Delivery> => {
    const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs: LEASE, waitMs: 0 });
    if (!d) throw new Error('nothing to fetch');
    return d;
  };
  return { app, broker, queue, logs, take };
}

const withAck = (d: Delivery, ack: Delivery['ack']): Delivery => ({
  message: d.message,
  token: d.token,
  lapses: d.lapses,
  ack,
  retry: (next, at) => d.retry(next, at),
  deadLetter: (reason, s) => d.deadLetter(reason, s),
  release: (at) => d.release(at),
});

describe('runDelivery', () => {
  it('runs and acks a task whose event listener throws, and logs the listener', async () => {
    const { app, broker, queue, logs, take } = setup();
    const t = app.task('fine', { input: z.object({}) }, () => 'ok');
    await t.enqueue({});
    const onEvent = () => {
      throw new Error('dashboard down');
    };
    const outcome = await runDelivery(app, await app.connection(), await take(), { attempt: new Attempt(), leaseMs: LEASE, onEvent });
    expect(outcome).toBe('succeeded');
    expect(await broker.stats(queue)).toMatchObject({ completed: 1, inFlight: 0, ready: 0 });
    expect(logs.filter((l) => l.level === 'error').map((l) => [l.msg, (l.fields as { event: string }).event])).toEqual([
      ['a task event listener threw; the task goes on', 'task:started'],
      ['a task event listener threw; the task goes on', 'task:succeeded'],
    ]);
  });

  it('ends as lost, with a warning, when the broker refuses the ack (the lease moved on)', async () => {
    const { app, logs, take } = setup();
    const t = app.task('fine', { input: z.object({}) }, () => 'ok');
    const h = await t.enqueue({});
    const d = await take();
    const outcome = await runDelivery(app, await app.connection(), withAck(d, () => Promise.reject(new LeaseLostError(d.message.id))), { attempt: new Attempt(), leaseMs: LEASE });
    expect(outcome).toBe('lost');
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.fields)).toEqual([{ taskId: h.id }]);
  });

  it('lets any other settlement error reach the worker (the message stays leased and comes back)', async () => {
    const { app, take } = setup();
    const t = app.task('fine', { input: z.object({}) }, () => 'ok');
    await t.enqueue({});
    const d = await take();
    const run = runDelivery(app, await app.connection(), withAck(d, () => Promise.reject(new Error('connection reset'))), { attempt: new Attempt(), leaseMs: LEASE });
    await expect(run).rejects.toThrow('connection reset');
  });

  it("ends the handler's part of an attempt that never ran a handler (its worker slot frees)", async () => {
    const { app, broker, queue, take } = setup();
    app.task('known', { input: z.object({}) }, () => 'ok');
    await broker.publish([makeMessage(queue, { task: 'nobody-registered-this' })], { keyTtlMs: 60_000 });
    let ended = 0;
    const attempt = new Attempt(() => ended++);
    expect(await runDelivery(app, await app.connection(), await take(), { attempt, leaseMs: LEASE })).toBe('failed');
    expect(ended).toBe(1);
    expect(attempt.handlerRunning).toBe(false);
  });

  it('gives a keyed attempt stopped by a hard stop its key back, so the next delivery can run it at once', async () => {
    const { app, queue, take } = setup();
    const t = app.task('keyed', { input: z.object({}) }, (_, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))));
    await t.enqueue({}, { idempotencyKey: 'k-1' });
    const attempt = new Attempt();
    const d = await take();
    const run = runDelivery(app, await app.connection(), d, { attempt, leaseMs: LEASE });
    await new Promise((resolve) => setTimeout(resolve, 20));
    attempt.abort(new Error('worker stopping now'));
    expect(await run).toBe('released');
    const conn = await app.connection();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await conn.results.claimKey({ queue, key: 'k-1' }, 'next-delivery', LEASE)).status).toBe('acquired');
  });
});
