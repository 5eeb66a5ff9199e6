import { createApp } from '@celeriac/core';
import { z } from 'zod';

/** The app the SIGKILL test runs in two processes: each task announces its start, then sleeps. */
export function killTestApp(url: string, queue: string, announce = false) {
  const app = createApp({ broker: url, defaultQueue: queue });
  const sleepy = app.task('kill.sleepy', { input: z.object({ i: z.number(), ms: z.number() }) }, async ({ i, ms }, ctx) => {
    if (announce) process.stdout.write(`started ${i} attempt ${ctx.attempt} pid ${process.pid}\n`);
    await new Promise((r) => setTimeout(r, ms));
    return i * 2;
  });
  return { app, sleepy };
}
