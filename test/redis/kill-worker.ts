// A worker process for the SIGKILL test: `node --conditions=@celeriac/source --import tsx kill-worker.ts <url> <queue>`.
import { Worker } from '@celeriac/worker';
import { killTestApp } from './kill-app.js';

const [url, queue] = process.argv.slice(2) as [string, string];
const { app } = killTestApp(url, queue, true);
const worker = new Worker(app, { queues: [queue], concurrency: 4, leaseMs: 1_000, blockMs: 500 });
await worker.start();
process.stdout.write('ready\n');
