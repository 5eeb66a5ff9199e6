import { describeBroker } from '@celeriac/core/testing';
import { amqpFixture } from './testing.js';

// The same rules as every backend, against the RabbitMQ at CELERIAC_AMQP_URL (default localhost).
describeBroker('amqp', async (options) => {
  const fx = await amqpFixture(options ? { maxMessageBytes: options.maxMessageBytes, deadLetters: options.deadLetters } : {});
  return { broker: fx.broker, injectRaw: fx.injectRaw, close: fx.close };
}, { coordination: false });
