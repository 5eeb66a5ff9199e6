// The app: shared by whatever enqueues (a web server, a script) and the workers that run tasks.
import { createApp, NonRetryableError } from '@celeriac/core';
import { z } from 'zod';

export const app = createApp({ broker: process.env.CELERIAC_BROKER_URL || 'memory://' });

export const add = app.task(
  'math.add',
  {
    input: z.object({ a: z.number(), b: z.number() }),
    retry: { maxAttempts: 5, backoff: 'exponential', delayMs: 1_000, maxDelayMs: 60_000, jitter: true },
    timeoutMs: 30_000,
  },
  async ({ a, b }) => a + b,
);

// Fails on its first two attempts (think: a flaky HTTP API), then succeeds.
export const fetchQuote = app.task(
  'quotes.fetch',
  { input: z.object({ symbol: z.string() }), retry: { maxAttempts: 4, backoff: 'exponential', delayMs: 100, jitter: false } },
  async ({ symbol }, ctx) => {
    if (ctx.attempt < 3) throw new Error(`upstream timeout on attempt ${ctx.attempt}`);
    return { symbol, price: 42.5, attempts: ctx.attempt };
  },
);

// Charges a card at most once per order, however often it is enqueued or delivered.
export let chargesMade = 0;
export const chargeCard = app.task(
  'billing.charge',
  { input: z.object({ orderId: z.string(), cents: z.number().int().positive() }) },
  async ({ orderId, cents }) => {
    if (cents > 1_000_000) throw new NonRetryableError('amount over the limit; retrying will not help');
    chargesMade++;
    return { orderId, charged: cents };
  },
);
