import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpBroker } from './broker.js';
import { AMQP_URL } from './testing.js';

const LIMIT = 4_096;

// Issue 8, defect 13: a 10 MB message ran (no size limit on arrival), and the wording for a
// misrouted envelope was the AMQP backend's own. Arrivals now go through core's parseMessage with
// both expectations: the queue they came from and BrokerOptions.maxMessageBytes.
describe('amqp: arrivals parsed with the queue and the size limit', () => {
  let broker: AmqpBroker;
  let raw: amqp.ChannelModel;
  const queues: string[] = [];
  beforeAll(async () => {
    broker = await new AmqpBroker(AMQP_URL, { reconnectMinMs: 20, maxMessageBytes: LIMIT }).connect();
    raw = await amqp.connect(AMQP_URL);
  });
  afterAll(async () => {
    const names = [...broker.declaredQueues, ...queues];
    await broker?.close();
    const ch = await raw.createChannel();
    for (const n of names) await ch.deleteQueue(n).catch(() => {});
    await raw.close();
  });

  async function inject(queue: string, body: string): Promise<void> {
    queues.push(queue, `${queue}:dead`);
    const ch = await raw.createChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-max-priority': 9 } });
    ch.sendToQueue(queue, Buffer.from(body), { persistent: true });
    await ch.close();
  }

  it('dead-letters an oversized message with the limit in the reason, and runs the next one', async () => {
    const q = uniqueQueue('ar');
    await inject(q, JSON.stringify(makeMessage(q, { payload: { blob: 'x'.repeat(LIMIT) } })));
    const small = makeMessage(q);
    await inject(q, JSON.stringify(small));
    const got = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 2_000 });
    expect(got.map((d) => d.message.id)).toEqual([small.id]);
    await got[0]!.ack();
    const dead = await broker.deadLetters(q);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toMatch(new RegExp(`^oversized message: \\d+ bytes, over the limit of ${LIMIT} \\(maxMessageBytes\\)$`));
  });

  it('dead-letters an envelope naming another queue with core’s wording', async () => {
    const q = uniqueQueue('ar');
    await inject(q, JSON.stringify(makeMessage('elsewhere')));
    expect(await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 500 })).toEqual([]);
    const dead = await broker.deadLetters(q);
    expect(dead.map((d) => d.reason)).toEqual([`misrouted message: its envelope names queue "elsewhere" but it arrived on "${q}"`]);
  });
});
