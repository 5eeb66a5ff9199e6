import { AmqpBroker } from '@celeriac/amqp-backend';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { Publisher } from '../../packages/amqp-backend/src/publisher.js';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';
import { FaultProxy } from '../support/fault-proxy.js';

// What a publish that gave up at its deadline means (issue 8, defect 12: "no late surprise"), with a
// TCP proxy in front of the shared RabbitMQ that can hold bytes in either direction, cut every
// connection and refuse new ones.

const KEY_TTL = { keyTtlMs: 60_000 };

describe('amqp: a publish given up at its deadline is never sent afterwards', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => {});
  });

  async function setup(publishTimeoutMs: number) {
    const proxy = await new FaultProxy(AMQP_URL).start();
    cleanup.push(() => proxy.close());
    const via = new URL(AMQP_URL);
    via.port = String(proxy.port);
    const broker = await new AmqpBroker(via.toString(), { replies: false, reconnectMinMs: 20, reconnectMaxMs: 200, publishTimeoutMs }).connect();
    // A direct connection (no proxy) to count the queue (it never consumes) and delete it after.
    const direct = await new AmqpBroker(AMQP_URL, { replies: false }).connect();
    const q = uniqueQueue('deadline');
    cleanup.push(async () => {
      await broker.close();
      await direct.link.withChannel(async (ch) => void (await ch.deleteQueue(q)));
      await direct.close();
    });
    await broker.publish([makeMessage(q)], KEY_TTL); // declares the queue: one message in it from here
    const count = () => direct.link.withChannel(async (ch) => (await ch.checkQueue(q)).messageCount);
    return { proxy, broker, q, count };
  }

  it('confirm held back past the deadline: rejected as "may or may not have been enqueued"; it was, exactly once', async () => {
    const { proxy, broker, q, count } = await setup(1_000);
    proxy.hold('replies');
    const m = makeMessage(q);
    const started = Date.now();
    const err = await broker.publish([m], KEY_TTL).then(() => null, (e: Error) => e);
    expect(Date.now() - started).toBeLessThan(8_000); // the bound is 1 s; generous for a busy machine
    expect(err?.message).toMatch(/did not confirm a publish to ".*" within 1000 ms: it may or may not have been enqueued \(it will not be sent again\)/);
    expect(broker.unconfirmed).toBe(0); // given up: nothing left pending, no timer, no leak
    proxy.heal(); // the late confirm arrives and changes nothing
    await new Promise((r) => setTimeout(r, 300));
    expect(await count()).toBe(2); // the first, and this one once
    await broker.publish([makeMessage(q)], KEY_TTL); // the same connection goes on working
    expect(await count()).toBe(3);
  });

  it('connection lost with the publish unconfirmed and RabbitMQ unreachable past the deadline: rejected, not resent on reconnect', async () => {
    const { proxy, broker, q, count } = await setup(1_000);
    proxy.hold('requests'); // the publish leaves the client but never reaches RabbitMQ
    const outcome = broker.publish([makeMessage(q)], KEY_TTL).then(() => null, (e: Error) => e);
    await new Promise((r) => setTimeout(r, 100));
    proxy.refuse(); // RabbitMQ unreachable: connections cut, the client's reconnects refused
    proxy.cut();
    const err = await outcome;
    expect(err?.message).toMatch(/within 1000 ms: it may or may not have been enqueued \(it will not be sent again\)/);
    proxy.heal(); // the client reconnects...
    await broker.link.session();
    await new Promise((r) => setTimeout(r, 300));
    expect(await count()).toBe(1); // ...and does not send what it gave up on (only the first is there)
    expect(broker.unconfirmed).toBe(0);
  });

  it("a caller's earlier deadline is kept even behind older pending publishes (one timer, re-armed)", async () => {
    const { proxy, broker, q, count } = await setup(10_000);
    const publisher = new Publisher(broker.link, 10_000);
    const out = (deadline?: number) => ({ queue: q, body: Buffer.from('{}'), props: { persistent: true }, mandatory: true, ...(deadline ? { deadline } : {}) });
    proxy.hold('replies');
    const older = publisher.publish(out());
    const started = Date.now();
    const err = await publisher.publish(out(Date.now() + 300)).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/may or may not have been enqueued/);
    expect(Date.now() - started).toBeLessThan(5_000); // not the older one's 10 s
    expect(publisher.unconfirmed).toBe(1);
    proxy.heal();
    await older; // the older one is confirmed as usual
    expect(publisher.unconfirmed).toBe(0);
    expect(await count()).toBe(3);
  });
});
