import { DEFAULT_BROKER_OPTIONS } from '@celeriac/core';
import { describe, expect, it } from 'vitest';
import { connectBroker } from './index.js';
import { AMQP_URL } from './testing.js';

describe('amqp: connectBroker(url, options)', () => {
  it('hands the app’s BrokerOptions to the AmqpBroker, the publish bound included', async () => {
    const limits = { maxMessageBytes: 4_096, deadLetters: { maxCount: 10, maxAgeMs: 60_000 }, publishTimeoutMs: 1_234 };
    const broker = await connectBroker(AMQP_URL, limits);
    try {
      expect(broker.limits).toEqual(limits);
    } finally {
      await broker.close();
    }
    const plain = await connectBroker(AMQP_URL);
    expect(plain.limits).toEqual(DEFAULT_BROKER_OPTIONS);
    await plain.close();
  });
});
