import { createApp } from '@celeriac/core';
import { z } from 'zod';

/**
 * The app the AMQP fault tests run in child worker processes and in the test process:
 * - `fault.block` blocks the event loop for `ms` (a CPU-bound handler), then returns `value`;
 * - `fault.poison` kills its worker process (`process.exit`), as a crashing native module would;
 * - `fault.work` is an ordinary short task (the throughput the poison must not starve).
 * Each handler announces its start on stdout, so the parent knows what ran where.
 */
export function faultApp(url: string, queue: string) {
  const app = createApp({ broker: url, defaultQueue: queue });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const block = app.task('fault.block', { input: z.object({ ms: z.number(), value: z.string() }), keepResult: true }, ({ ms, value }, ctx) => {
    say(`started block attempt ${ctx.attempt} pid ${process.pid}`);
    const until = Date.now() + ms;
    while (Date.now() < until); // no await: timers, heartbeats and renewals all stop
    return value;
  });
  const poison = app.task('fault.poison', { input: z.object({}), retry: { maxAttempts: 3 } }, (_, ctx) => {
    say(`started poison attempt ${ctx.attempt} pid ${process.pid}`);
    process.exit(1);
  });
  const work = app.task('fault.work', { input: z.object({ i: z.number() }) }, async ({ i }) => {
    await new Promise((r) => setTimeout(r, 5));
    say(`done work ${i}`);
    return i;
  });
  return { app, block, poison, work };
}
