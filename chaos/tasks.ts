// The chaos app's tasks. Their handlers do nothing but record their side effects in the ledger
// (a private Redis), which is what the runner counts. chaos/app.ts builds the app a worker runs;
// the runner builds its own copy (no ledger) to enqueue the same tasks.
import { createApp, type ResultBackend, type TaskContext } from '@celeriac/core';
import { z } from 'zod';
import type { Ledger } from './ledger.js';

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** Holds the event loop (no timer, no I/O runs meanwhile), as a CPU-bound or sync-I/O handler would. */
function blockLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    /* spin */
  }
}

export interface ChaosConfig {
  broker: string;
  results?: string | ResultBackend | undefined;
  queue: string;
  /** Null in the runner, which only enqueues (its handlers never run). */
  ledger: Ledger | null;
  /** Declares a 1 s schedule of this name (the beat scenario). */
  schedule?: string | undefined;
}

export function chaosApp(config: ChaosConfig) {
  const app = createApp({ broker: config.broker, ...(config.results ? { results: config.results } : {}), defaultQueue: config.queue });
  const ledgerOrThrow = () => {
    if (!config.ledger) throw new Error('chaos: this app has no ledger (it only enqueues)');
    return config.ledger;
  };
  const workInput = z.object({
    i: z.number().int().min(0),
    ms: z.number().int().min(0).default(0),
    /** Index of the idempotency key, for tasks enqueued with one. */
    k: z.number().int().min(0).optional(),
    mode: z.enum(['plain', 'keyed', 'exit', 'block']).default('plain'),
    /** `block`: how long the first run holds the event loop. */
    blockMs: z.number().int().min(0).default(0),
  });
  const workHandler = async ({ i, ms, k, mode, blockMs }: z.output<typeof workInput>, ctx: TaskContext) => {
    const ledger = ledgerOrThrow();
    const run = await ledger.start(i);
    if (mode === 'exit') {
      // A poison task: it takes its worker down with it, every time.
      await ledger.count('poison-runs');
      process.exit(1);
    }
    const timed = mode !== 'plain';
    if (timed) await ledger.event({ i, run, pid: process.pid, phase: 'start', at: Date.now() });
    if (mode === 'block' && run === 1) blockLoop(blockMs);
    if (mode === 'keyed' && k !== undefined) {
      // The handler keys its own effect by the key, the way a handler writing a row would:
      // look it up, do the work, record it. Correct only while no two runs of a key overlap.
      await ledger.enterKey(k);
      try {
        if (!(await ledger.keyDone(k))) {
          await sleep(ms, ctx.signal);
          if (ctx.signal.aborted) {
            await ledger.event({ i, run, pid: process.pid, phase: 'aborted', at: Date.now() });
            throw ctx.signal.reason ?? new Error('aborted');
          }
          await ledger.keyEffect(k);
        }
      } finally {
        await ledger.leaveKey(k);
      }
    } else {
      await sleep(ms, ctx.signal);
    }
    await ledger.effect(i);
    if (timed) await ledger.event({ i, run, pid: process.pid, phase: 'end', at: Date.now() });
    return { i, run, pid: process.pid };
  };
  const work = app.task('chaos.work', { input: workInput, retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 200, jitter: false } }, workHandler);
  // The kill scenario's tasks. Each SIGKILL spends an attempt of every task it interrupts (the rule
  // that ends a task which keeps killing its worker), and a storm of one kill every 2 s interrupts
  // about one task in ten: at 3 attempts a couple of tasks in 2,000 would be dead-lettered by chance.
  const sturdy = app.task('chaos.sturdy', { input: workInput, retry: { maxAttempts: 10, backoff: 'fixed', delayMs: 200, jitter: false } }, workHandler);

  /** Fire-and-forget work for the long scenarios (steady load, memory): a bit in the ledger, nothing stored. */
  const light = app.task(
    'chaos.light',
    { input: z.object({ i: z.number().int().min(0) }), keepResult: false, retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 200, jitter: false } },
    async ({ i }) => {
      await ledgerOrThrow().effect(i);
    },
  );

  const tick = app.task('chaos.tick', { input: z.object({}) }, async (_input, ctx) => {
    // ctx.id is beat:<schedule>:<tick epoch ms>: one ledger entry per tick.
    const ledger = ledgerOrThrow();
    await ledger.redis.hincrby(`${ledger.prefix}:ticks`, ctx.id.split(':').pop()!, 1);
  });

  if (config.schedule) app.schedule(config.schedule, { every: '1s', task: tick, payload: {} });
  return { app, work, sturdy, light, tick };
}
