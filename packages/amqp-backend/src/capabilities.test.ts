import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { amqpFixture } from './testing.js';

type Fixture = Awaited<ReturnType<typeof amqpFixture>>;

// Issue 8, defect 5: RabbitMQ alone keeps results, claims and publish deduplication per process.
// Its capabilities must say so (core and users branch on `shared`), and the limit is real.
describe('amqp alone: what it cannot promise across processes', () => {
  let a: Fixture;
  let b: Fixture;
  beforeAll(async () => {
    a = await amqpFixture();
    b = await amqpFixture();
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('declares its result store unshared', () => {
    expect(a.broker.results.capabilities).toEqual({ push: true, shared: false });
  });

  it('deduplicates an idempotency key within a process, not across two', async () => {
    const q = a.track(uniqueQueue('ac'));
    const [first, again, other] = [makeMessage(q, { idempotencyKey: 'k' }), makeMessage(q, { idempotencyKey: 'k' }), makeMessage(q, { idempotencyKey: 'k' })];
    expect(await a.broker.publish([first], { keyTtlMs: 60_000 })).toEqual([{ id: first.id, duplicate: false }]);
    expect(await a.broker.publish([again], { keyTtlMs: 60_000 })).toEqual([{ id: first.id, duplicate: true }]);
    // Another producer process knows nothing of it: a second task is created.
    expect(await b.broker.publish([other], { keyTtlMs: 60_000 })).toEqual([{ id: other.id, duplicate: false }]);
    const got = [];
    for (let i = 0; i < 5 && got.length < 2; i++) got.push(...(await a.broker.fetch({ queues: [q], max: 5, leaseMs: 30_000, waitMs: 1_000 })));
    await Promise.all(got.map((d) => d.ack()));
    expect(got.map((d) => d.message.id).sort()).toEqual([first.id, other.id].sort());
  });
});
