// Periodic tasks: declared next to the tasks they enqueue, run by `celeriac beat` or `worker --beat`.
import { createApp } from '@celeriac/core';
import { z } from 'zod';

export const app = createApp({ broker: process.env.CELERIAC_BROKER_URL || 'memory://' });

export const sendReport = app.task('reports.send', { input: z.object({ kind: z.enum(['daily', 'pulse']) }) }, async ({ kind }, ctx) => {
  return `${kind} report for tick ${ctx.id}`;
});

// Every night at 03:00 Paris time, whatever the DST offset; missed nights are skipped.
app.schedule('reports.nightly', { cron: '0 3 * * *', tz: 'Europe/Paris', task: sendReport, payload: { kind: 'daily' }, missed: 'skip' });

// Every second, so the demo shows something; after downtime, catch up at most 2 ticks.
app.schedule('reports.pulse', { every: '1s', task: sendReport, payload: { kind: 'pulse' }, missed: { catchUp: 2 } });
