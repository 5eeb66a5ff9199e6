// A worker process for the AMQP fault tests:
//   node --conditions=@celeriac/source --import tsx fault-worker.ts <url> <queue> <leaseMs> <concurrency>
import { Worker } from '@celeriac/worker';
import { faultApp } from './fault-app.js';

const [url, queue, leaseMs, concurrency] = process.argv.slice(2) as [string, string, string, string];
const { app } = faultApp(url, queue);
const worker = new Worker(app, { queues: [queue], concurrency: Number(concurrency), leaseMs: Number(leaseMs), blockMs: 500 });
await worker.start();
process.stdout.write('ready\n');
// The parent reads outcomes from stdout: which task failed, with what reason.
worker.on('task:failed', (e) => process.stdout.write(`failed ${e.message.task} ${e.message.id} ${e.reason}\n`));
