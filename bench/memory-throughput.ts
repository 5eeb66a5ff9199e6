// Core overhead with no network: bulk-enqueue N no-op tasks on memory:// and process them with one
// worker. Prints one JSON line. Run: node --conditions=@celeriac/source --import tsx bench/memory-throughput.ts
import { createApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { z } from 'zod';

const N = Number(process.env.N ?? 50_000);
const C = Number(process.env.C ?? 50);
const app = createApp({ broker: 'memory://' });
const noop = app.task('bench.noop', { input: z.object({ i: z.number() }) }, ({ i }) => i);

let t = performance.now();
for (let off = 0; off < N; off += 1_000) {
  await noop.enqueueMany(Array.from({ length: Math.min(1_000, N - off) }, (_, k) => ({ payload: { i: off + k } })));
}
const enqueueMs = performance.now() - t;

const worker = new Worker(app, { concurrency: C });
let done = 0;
const finished = new Promise<void>((resolve) => worker.on('task:succeeded', () => ++done === N && resolve()));
t = performance.now();
await worker.start();
await finished;
const processMs = performance.now() - t;
await worker.stop();
await app.close();
console.log(JSON.stringify({ bench: 'memory', n: N, concurrency: C, enqueuePerSec: Math.round(N / (enqueueMs / 1000)), processPerSec: Math.round(N / (processMs / 1000)), resultsKept: true }));
