import { connectRedisBroker } from '@celeriac/redis-backend';
import { makeMessage } from '@celeriac/core/testing';
import { parseMessage } from '@celeriac/core';
const N = 20000;
const b = await connectRedisBroker('redis://127.0.0.1:6379?prefix=prof-raw');
const q = 'q' + Date.now();
await b.stats(q);
const msgs = Array.from({ length: N }, (_, i) => makeMessage(q, { payload: { i, t: 0 } }));
let t = performance.now();
for (let i = 0; i < N; i += 1000) await b.publish(msgs.slice(i, i + 1000), { keyTtlMs: 86400000 });
console.log('publish/s', Math.round(N / (performance.now() - t) * 1000));
t = performance.now();
let done = 0;
while (done < N) {
  const ds = await b.fetch({ queues: [q], max: 50, leaseMs: 30000, waitMs: 1000 });
  await Promise.all(ds.map((d) => d.ack({ record: { id: d.message.id, queue: q, task: d.message.task, state: 'succeeded', value: 1, attempts: 1, finishedAt: Date.now(), idempotencyKey: null }, ttlMs: 86400000, keyTtlMs: 86400000 })));
  done += ds.length;
}
console.log('fetch+ack/s', Math.round(N / (performance.now() - t) * 1000));
t = performance.now();
const raw = JSON.stringify(msgs[0]);
for (let i = 0; i < N; i++) parseMessage(raw);
console.log('parseMessage µs', (performance.now() - t) * 1000 / N);
await b.close();
