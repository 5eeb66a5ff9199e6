import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { heartbeatForLease, negotiatedHeartbeat, takeoverBoundMs } from './heartbeat.js';
import { AMQP_URL } from './testing.js';

// Issue 8, defect 4: a blocked owner keeps its deliveries until RabbitMQ misses its heartbeats,
// whatever leaseMs says. test/amqp/blocked-loop.test.ts measures the takeover with a real blocked
// process; here: the bound's arithmetic, and that a heartbeat too long for the lease is not silent.
describe('amqp: heartbeat and lease', () => {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (_: object | string, msg?: string) => void warnings.push(msg ?? '') };
  beforeEach(() => void (warnings.length = 0));

  it('fits a heartbeat whose takeover bound stays within the lease', () => {
    for (const leaseMs of [3_000, 5_000, 30_000, 120_000]) {
      expect(takeoverBoundMs(heartbeatForLease(leaseMs))).toBeLessThanOrEqual(leaseMs);
    }
    expect(heartbeatForLease(30_000)).toBe(10);
    expect(heartbeatForLease(500)).toBe(1); // the floor: RabbitMQ heartbeats are whole seconds
    expect(takeoverBoundMs(0)).toBe(Infinity);
  });

  it('says so, naming the URL parameter, when a pinned heartbeat cannot enforce the lease (and keeps it)', async () => {
    const broker = await new AmqpBroker(`${AMQP_URL}?heartbeat=15`, { reconnectMinMs: 20 }, logger).connect();
    const q = uniqueQueue('ah');
    try {
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(15);
      await broker.publish([makeMessage(q)], { keyTtlMs: 60_000 });
      const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 2_000 });
      await d!.ack();
      expect(warnings.filter((w) => w.includes('?heartbeat=1'))).toHaveLength(1);
      // Once per lease length, not per fetch; and the user's heartbeat stays.
      await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 0 });
      expect(warnings.filter((w) => w.includes('?heartbeat='))).toHaveLength(1);
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(15);
    } finally {
      await broker.link.withChannel((ch) => ch.deleteQueue(q).then(() => {}));
      await broker.close();
    }
  });

  it('fits a heartbeat nobody pinned to the lease: reconnects with heartbeat ≤ leaseMs / 3, no warning', async () => {
    const broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20 }, logger).connect();
    const q = uniqueQueue('ah');
    try {
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(10); // the default covers a 30 s lease as is
      await broker.publish([makeMessage(q)], { keyTtlMs: 60_000 });
      const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 5_000 });
      expect(d).toBeDefined();
      const heartbeat = negotiatedHeartbeat(broker.link.current!.model);
      expect(heartbeat).toBeGreaterThan(0);
      expect(heartbeat).toBeLessThanOrEqual(1);
      expect(takeoverBoundMs(heartbeat)).toBeLessThanOrEqual(3_000);
      await d!.ack(); // the delivery came on the retuned session: its token is good
      expect(warnings).toEqual([]);
    } finally {
      await broker.link.withChannel((ch) => ch.deleteQueue(q).then(() => {}));
      await broker.close();
    }
  });

  it('does not close a session it consumes on: the fitted heartbeat waits for the next reconnect, with a warning', async () => {
    const broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20 }, logger).connect();
    const q = uniqueQueue('ah');
    try {
      await broker.publish([makeMessage(q), makeMessage(q)], { keyTtlMs: 60_000 });
      const [held] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 5_000 });
      const gen = broker.link.current!.gen;
      // A shorter lease on a session with consumers (and a lease): closing it would return what
      // RabbitMQ has in flight to it as deaths of those tasks.
      await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 100 });
      expect(broker.link.current!.gen).toBe(gen);
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(10);
      expect(warnings.filter((w) => w.includes('heartbeat lowered to 1 s for leaseMs 3000 from the next connection on'))).toHaveLength(1);
      await held!.ack();
      broker.link.drop(new Error('test: connection lost'));
      const [second] = await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 5_000 });
      expect(broker.link.current!.gen).toBeGreaterThan(gen);
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(1);
      await second!.ack();
    } finally {
      await broker.link.withChannel((ch) => ch.deleteQueue(q).then(() => {}));
      await broker.close();
    }
  });

  it('keeps a heartbeat pinned with the heartbeatS option too', async () => {
    const broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20, heartbeatS: 6 }, logger).connect();
    try {
      await broker.fetch({ queues: [uniqueQueue('ah')], max: 1, leaseMs: 3_000, waitMs: 0 });
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(6);
      expect(broker.link.retune(1)).toBe(false);
      expect(warnings.filter((w) => w.includes('?heartbeat=1'))).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });
});
