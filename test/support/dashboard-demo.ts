import { createApp, NonRetryableError, type App, type AppOptions } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { z } from 'zod';

/**
 * A small shop's task traffic, for the dashboard's screenshots (and for looking at the pages by
 * hand): four queues served by a worker with its scheduler, a fifth queue paused with work piling
 * up, emails that sometimes retry, card charges that are sometimes declined (dead letters with
 * their error), image resizes reporting progress, slow reports, delayed reminders. `stop()` ends
 * the producer and the worker; the app is the caller's to close.
 */
export interface DemoTraffic {
  app: App;
  worker: Worker;
  /** A declined charge (failed, dead-lettered): its page shows payload, error and stack. */
  declined(): Promise<string>;
  stop(): Promise<void>;
}

class CardDeclinedError extends NonRetryableError {
  constructor(message: string) {
    super(message);
    this.name = 'CardDeclinedError';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[], i: number): T => items[i % items.length]!;
const CUSTOMERS = ['ada@example.com', 'grace@example.org', 'linus@example.net', 'margaret@example.com', 'ken@example.org'];

export async function startDemoTraffic(options: AppOptions, { perSecond = 12 } = {}): Promise<DemoTraffic> {
  const app = createApp(options);
  let n = 0;
  const declinedIds: string[] = [];

  const sendEmail = app.task(
    'emails.send',
    { queue: 'emails', input: z.object({ to: z.string(), template: z.string() }), retry: { maxAttempts: 3, delayMs: 300, jitter: false } },
    async ({ to, template }, ctx) => {
      await sleep(40 + ((n * 37) % 120));
      if (ctx.attempt === 1 && n % 9 === 0) throw new Error(`SMTP 421 from mx.example.com: try again later (${to})`);
      return { to, template, messageId: `<${ctx.id}@mail.example.com>` };
    },
  );
  const resize = app.task('images.resize', { queue: 'images', input: z.object({ image: z.string(), sizes: z.array(z.number()) }) }, async ({ image, sizes }, ctx) => {
    for (const [i, size] of sizes.entries()) {
      await sleep(150);
      await ctx.progress({ done: i + 1, of: sizes.length, size });
    }
    return { image, variants: sizes.map((s) => `${image.replace(/\.jpg$/, '')}-${s}.webp`) };
  });
  const charge = app.task(
    'billing.charge',
    { queue: 'billing', input: z.object({ orderId: z.string(), customer: z.string(), cents: z.number().int(), currency: z.string() }) },
    async ({ orderId, cents }) => {
      await sleep(80);
      if (cents % 7 === 0) throw new CardDeclinedError(`card declined by the issuer for order ${orderId}: insufficient funds`);
      return { orderId, charged: cents };
    },
  );
  const report = app.task('reports.build', { queue: 'reports', input: z.object({ kind: z.string(), day: z.string() }), timeoutMs: 60_000 }, async ({ kind, day }) => {
    await sleep(2_500 + ((n * 131) % 2_000));
    return { kind, day, rows: 1_000 + (n % 500) };
  });
  const webhook = app.task('webhooks.deliver', { queue: 'webhooks', input: z.object({ url: z.string(), event: z.string() }) }, async ({ url }) => ({ url, status: 200 }));
  app.schedule('reports.nightly', { cron: '0 3 * * *', tz: 'Europe/Paris', task: report, payload: { kind: 'sales', day: 'yesterday' }, missed: 'skip' });
  app.schedule('emails.digest', { every: '1h', task: sendEmail, payload: { to: 'team@example.com', template: 'digest' } });

  await app.control.pause('webhooks');
  const worker = new Worker(app, { queues: ['emails', 'images', 'billing', 'reports', 'webhooks'], concurrency: 12, beat: true });
  await worker.start();

  const produce = async () => {
    n++;
    const wave = 0.6 + 0.4 * Math.sin(n / 40);
    const emails = Math.round((perSecond / 2) * wave);
    await sendEmail.enqueueMany(Array.from({ length: emails }, (_, i) => ({ payload: { to: pick(CUSTOMERS, n + i), template: pick(['welcome', 'receipt', 'password-reset'], n + i) } })));
    if (n % 2 === 0) await resize.enqueue({ image: `uploads/${1000 + n}.jpg`, sizes: [320, 640, 1280] });
    const cents = 500 + ((n * 389) % 20_000);
    const handle = await charge.enqueue({ orderId: `order-${4200 + n}`, customer: pick(CUSTOMERS, n), cents, currency: 'EUR' });
    if (cents % 7 === 0) declinedIds.push(handle.id);
    if (n % 6 === 0) await report.enqueue({ kind: pick(['sales', 'inventory', 'churn'], n), day: '2026-11-28' });
    if (n % 5 === 0) await webhook.enqueue({ url: 'https://hooks.example.com/orders', event: 'order.paid' });
    if (n % 10 === 0) await sendEmail.enqueue({ to: pick(CUSTOMERS, n), template: 'cart-reminder' }, { delayMs: 3_600_000 });
  };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await produce().catch(() => {});
      await sleep(1_000);
    }
  })();

  return {
    app,
    worker,
    async declined() {
      for (let i = 0; i < 100 && declinedIds.length === 0; i++) await sleep(100);
      const id = declinedIds[0];
      if (!id) throw new Error('no charge was declined yet');
      return id;
    },
    async stop() {
      stopped = true;
      await loop;
      await worker.stop({ graceMs: 1_000 });
    },
  };
}
