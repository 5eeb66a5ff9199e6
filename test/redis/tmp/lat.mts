import { createApp } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { z } from 'zod';
const prefix = 'lat' + Date.now();
const port = process.env.PORT ?? '6379';
const lat: number[] = [];
const mk = () => {
  const app = createApp({ broker: `redis://127.0.0.1:${port}?prefix=${prefix}`, defaultQueue: 'q' });
  const task = app.task('bench.noop', { input: z.object({ t: z.number() }) }, ({ t }) => { lat.push(performance.now() - t); return 1; });
  return { app, task };
};
const w = mk(); const p = mk();
const worker = new Worker(w.app, { queues: ['q'], concurrency: 50 });
await worker.start();
await p.app.connection();
for (let i = 0; i < 300; i++) { await p.task.enqueue({ t: performance.now() }); await new Promise((r) => setTimeout(r, 3)); }
await new Promise((r) => setTimeout(r, 200));
lat.sort((a, b) => a - b);
console.log('n', lat.length, 'p50', lat[lat.length >> 1]!.toFixed(2), 'p90', lat[Math.floor(lat.length * 0.9)]!.toFixed(2), 'p99', lat[Math.floor(lat.length * 0.99)]!.toFixed(2));
await worker.stop(); await w.app.close(); await p.app.close();
