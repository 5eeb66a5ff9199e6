/**
 * @celeriac/amqp-backend — RabbitMQ for celeriac, selected by amqp:// and amqps:// URLs.
 *
 *   const app = createApp({ broker: 'amqp://guest:guest@127.0.0.1:5672?quorum=payments' });
 *   // results come back over per-client reply queues; or share them: results: 'redis://…'
 *   // (no connectResults: an amqp:// result store only works as the broker's own `results`)
 *   const worker = new Worker(app, { queues: ['default'], concurrency: 50 });
 */
import { AmqpBroker } from './broker.js';

export { AmqpBroker } from './broker.js';
export { AmqpResults } from './results.js';
export { amqpOptionsSchema, parseAmqpUrl } from './options.js';
export type { AmqpOptions } from './options.js';

/** The `BackendModule` entry point `createApp` loads for amqp:// URLs. */
export async function connectBroker(url: string): Promise<AmqpBroker> {
  return new AmqpBroker(url).connect();
}

