/**
 * @celeriac/amqp-backend — RabbitMQ for celeriac, selected by amqp:// and amqps:// URLs.
 *
 *   const app = createApp({ broker: 'amqp://guest:guest@127.0.0.1:5672?quorum=payments' });
 *   const handle = await add.enqueue({ a: 1, b: 2 });   // resolves once RabbitMQ confirmed it
 *   await new Worker(app, { queues: ['default'], concurrency: 50 }).start();
 *   console.log(await handle.result());                 // came back on this client's reply queue
 *
 * URL parameters: `quorum=a,b` (quorum queues), `maxPriority=0..9` (default 9), `replies=false`
 * (fire-and-forget producer), `rotateAfterMs`, `replyQueueExpiresMs`, and amqplib's own
 * (`heartbeat`, default 15 s here; `frameMax`, …). No `connectResults`: the AMQP result path only
 * works as the broker's own `results`; for a shared store use `results: 'redis://…'`.
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

