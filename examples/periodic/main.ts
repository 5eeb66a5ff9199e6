// Runs a worker with the scheduler embedded (like `celeriac worker --beat`) for about 3.5 seconds.
// Run: node --conditions=@celeriac/source --import tsx examples/periodic/main.ts
import { Worker } from '@celeriac/worker';
import { app } from './app.js';

const worker = new Worker(app, { beat: true, concurrency: 2 });
worker.on('task:succeeded', (e) => console.log(`${new Date().toISOString()}  ${String(e.value)}`));
await worker.start();
await new Promise((resolve) => setTimeout(resolve, 3_500));
await worker.stop();
await app.close();
