// A worker process for the AMQP fault tests:
//   node --conditions=@celeriac/source --import tsx fault-worker.ts <url> <queue> <leaseMs> <concurrency>
import { Worker } from '@celeriac/worker';
import { faultApp } from './fault-app.js';

const [url, queue, leaseMs, concurrency] = process.argv.slice(2) as [string, string, string, string];
const { app } = faultApp(url, queue);
const worker = new Worker(app, { queues: [queue], concurrency: Number(concurrency), leaseMs: Number(leaseMs), blockMs: 500 });
await worker.start();
process.stdout.write('ready\n');
if (process.env.FAULT_DEBUG) {
  for (const e of ['task:succeeded', 'task:failed', 'task:retrying', 'worker:error'] as const) worker.on(e, (x: unknown) => process.stdout.write(`event ${e} ${String((x as Error)?.message ?? '')}\n`));
}
