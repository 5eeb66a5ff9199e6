// profile: bulk-enqueue N, then run a celeriac worker in this process and time it
import { consumer, producer, cleanup } from '../../../bench/redis-systems.ts';
const N = Number(process.env.N ?? 20000);
const prefix = 'prof-w' + Date.now();
const p = producer('celeriac', prefix, 'q');
const jobs = Array.from({ length: N }, (_, i) => ({ i, t: 0 }));
let t = performance.now();
for (let i = 0; i < N; i += 1000) await p.enqueueBulk(jobs.slice(i, i + 1000));
console.log('bulk/s', Math.round(N / (performance.now() - t) * 1000));
await p.close();
let first = 0;
const c = await consumer('celeriac', prefix, 'q', N, 50, () => { first ||= performance.now(); });
await c.finished;
console.log('process/s', Math.round(N / (performance.now() - first) * 1000));
await c.close();
await cleanup(prefix);
