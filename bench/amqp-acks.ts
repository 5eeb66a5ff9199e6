// The AMQP ack coalescer while one delivery stays unacked (issue 8, defect 8). Prints JSON lines.
//
//   node --conditions=@celeriac/source --import tsx bench/amqp-acks.ts   (BENCH_N=20000 CELERIAC_AMQP_URL=amqp://…)
//
// One worker-like loop holds the first delivery (a long task) and acks the other N one per tick, as
// tasks finishing one by one do. Per slice of N/4 acks: CPU ms of this process per 10,000 acks and
// the entries the coalescer examined per ack. Flat figures across slices = O(1) per ack; before the
// fix, the work per ack grew with every ack since the held one (quadratic in total).
import { randomUUID } from 'node:crypto';
import { AmqpBroker } from '@celeriac/amqp-backend';
import type { TaskMessage } from '@celeriac/core';

const url = process.env.CELERIAC_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const n = Number(process.env.BENCH_N ?? 20_000);
const queue = `bench-acks-${randomUUID().slice(0, 8)}`;
const broker = await new AmqpBroker(`${url}?maxPriority=0&replies=false`).connect();
const msg = (i: number): TaskMessage => ({
  v: 1, id: `${queue}-${i}`, task: 'bench.noop', queue, payload: { i }, attempt: 1, maxAttempts: 1, eta: null, expiresAt: null,
  priority: 0, idempotencyKey: null, trace: {}, createdAt: Date.now(), lastError: null,
});
try {
  for (let i = 0; i <= n; i += 1_000) await broker.publish(Array.from({ length: Math.min(1_000, n + 1 - i) }, (_, k) => msg(i + k)), { keyTtlMs: 60_000 });
  const got = [];
  while (got.length < n + 1) got.push(...(await broker.fetch({ queues: [queue], max: n + 1, leaseMs: 600_000, waitMs: 5_000 })));
  const [held, ...rest] = got;
  const acks = broker.link.current!.acks;
  const slice = Math.ceil(rest.length / 4);
  for (let s = 0; s < 4; s++) {
    const part = rest.slice(s * slice, (s + 1) * slice);
    const cpu = process.cpuUsage();
    const scans = acks.scans;
    for (const d of part) {
      await d.ack();
      await new Promise((r) => setImmediate(r));
    }
    const used = process.cpuUsage(cpu);
    console.log(JSON.stringify({ bench: 'amqp-acks', slice: s + 1, acks: part.length, heldUnacked: 1, cpuMsPer10kAcks: Math.round(((used.user + used.system) / 1_000 / part.length) * 10_000), scansPerAck: Number(((acks.scans - scans) / part.length).toFixed(2)) }));
  }
  await held!.ack();
} finally {
  await broker.link.withChannel((ch) => ch.deleteQueue(queue)).catch(() => {});
  await broker.close();
}
