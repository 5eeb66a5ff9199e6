import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { heartbeatForLease, negotiatedHeartbeat, takeoverBoundMs } from './heartbeat.js';
import { AMQP_URL } from './testing.js';

// Issue 8, defect 4: a blocked owner keeps its deliveries until RabbitMQ misses its heartbeats,
// whatever leaseMs says. test/amqp/blocked-loop.test.ts measures the takeover with a real blocked
// process; here: the bound's arithmetic, and that a heartbeat too long for the lease is not silent.
describe('amqp: heartbeat and lease', () => {
  it('fits a heartbeat whose takeover bound stays within the lease', () => {
    for (const leaseMs of [3_000, 5_000, 30_000, 120_000]) {
      expect(takeoverBoundMs(heartbeatForLease(leaseMs))).toBeLessThanOrEqual(leaseMs);
    }
    expect(heartbeatForLease(30_000)).toBe(10);
    expect(heartbeatForLease(500)).toBe(1); // the floor: RabbitMQ heartbeats are whole seconds
    expect(takeoverBoundMs(0)).toBe(Infinity);
  });

  it('says so, naming the URL parameter, when the heartbeat cannot enforce the lease', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (_: object | string, msg?: string) => void warnings.push(msg ?? '') };
    const broker = await new AmqpBroker(`${AMQP_URL}?heartbeat=15`, { reconnectMinMs: 20 }, logger).connect();
    const q = uniqueQueue('ah');
    try {
      expect(negotiatedHeartbeat(broker.link.current!.model)).toBe(15);
      await broker.publish([makeMessage(q)], { keyTtlMs: 60_000 });
      const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 2_000 });
      await d!.ack();
      expect(warnings.filter((w) => w.includes('?heartbeat=1'))).toHaveLength(1);
      // Once per lease length, not per fetch.
      await broker.fetch({ queues: [q], max: 1, leaseMs: 3_000, waitMs: 0 });
      expect(warnings.filter((w) => w.includes('?heartbeat='))).toHaveLength(1);
    } finally {
      await broker.link.withChannel((ch) => ch.deleteQueue(q).then(() => {}));
      await broker.close();
    }
  });
});
