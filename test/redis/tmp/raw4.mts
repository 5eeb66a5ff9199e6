import { connectRedisBroker } from '@celeriac/redis-backend';
import { makeMessage } from '@celeriac/core/testing';
import { Redis } from 'ioredis';
const N = 20000;
const r = new Redis(7014);
const stat = async () => { const l = (await r.info('commandstats')).split('\r\n').find((l) => l.startsWith('cmdstat_evalsha')) ?? 'calls=0,usec=0'; const m = /calls=(\d+),usec=(\d+)/.exec(l)!; return { calls: +m[1], usec: +m[2] }; };
const b = await connectRedisBroker('redis://127.0.0.1:7014?prefix=prof-raw');
const q = 'q' + Date.now();
await b.stats(q);
const msgs = Array.from({ length: N }, (_, i) => makeMessage(q, { payload: { i, t: 0 } }));
for (let round = 0; round < 3; round++) {
let s0 = await stat();
for (let i = 0; i < N; i += 1000) await b.publish(msgs.slice(i, i + 1000).map(m => ({...m, id: m.id + round})), { keyTtlMs: 86400000 });
let s1 = await stat();
const all = [];
while (all.length < N) all.push(...await b.fetch({ queues: [q], max: 50, leaseMs: 30000, waitMs: 1000 }));
let s2 = await stat();
for (let i = 0; i < N; i += 50) await Promise.all(all.slice(i, i + 50).map((d) => d.ack({ record: { id: d.message.id, queue: q, task: d.message.task, state: 'succeeded', value: 1, attempts: 1, finishedAt: Date.now(), idempotencyKey: null }, ttlMs: 86400000, keyTtlMs: 86400000 })));
let s3 = await stat();
console.log('µs/task publish', (s1.usec - s0.usec) / N, 'fetch', (s2.usec - s1.usec) / N, 'ack', (s3.usec - s2.usec) / N);
}
await b.close(); r.disconnect();
