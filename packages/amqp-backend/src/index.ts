/**
 * @celeriac/amqp-backend — RabbitMQ for celeriac, selected by amqp:// and amqps:// URLs.
 *
 *   const app = createApp({ broker: 'amqp://guest:guest@127.0.0.1:5672?quorum=payments' });
 *   const handle = await add.enqueue({ a: 1, b: 2 });   // resolves once RabbitMQ confirmed it
 *   await new Worker(app, { queues: ['default'], concurrency: 50 }).start();
 *   console.log(await handle.result());                 // came back on this client's reply queue
 *
 * URL parameters: `quorum=a,b` (quorum queues), `maxPriority=0..9` (default 9), `replies=false`
 * (fire-and-forget producer), `rotateAfterMs`, `replyQueueExpiresMs`, `publishTimeoutMs`, and the
 * connection's (`heartbeat` in s, default 15; `frameMax`, `channelMax`, `locale`, `connectTimeoutMs`;
 * amqps: `ca`, `cert`, `key`, `passphrase`, `servername`). Unknown parameters are refused. No
 * `connectResults`: the AMQP result path only works as the broker's own `results`; for a shared
 * store use `results: 'redis://…'`.
 */
import { DEFAULT_BROKER_OPTIONS, silentLogger, type BrokerOptions } from '@celeriac/core';
import { AmqpBroker } from './broker.js';

export { AmqpBroker } from './broker.js';
export type { AmqpBrokerOptions } from './broker.js';
export { AmqpResults } from './results.js';
export { PublishTimeoutError } from './publisher.js';
export { parseEndpoint } from './endpoint.js';
export { amqpOptionsSchema, parseAmqpUrl } from './options.js';
export type { AmqpOptions } from './options.js';

/**
 * The `BackendModule` entry point `createApp` loads for amqp:// URLs. The app's `enqueueTimeoutMs`
 * (`options.publishTimeoutMs`) becomes the publisher's give-up bound unless the URL sets its own,
 * so nothing is sent after the app told its caller the enqueue timed out.
 */
export async function connectBroker(url: string, options: BrokerOptions = DEFAULT_BROKER_OPTIONS): Promise<AmqpBroker> {
  const { publishTimeoutMs, ...limits } = options;
  const bound = new URL(url).searchParams.has('publishTimeoutMs') ? {} : { publishTimeoutMs };
  return new AmqpBroker(url, { ...limits, ...bound }, silentLogger).connect();
}

