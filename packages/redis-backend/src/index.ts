/**
 * @celeriac/redis-backend — a leased, batched broker and result store on Redis 7+ (or Redis Cluster).
 *
 *   const app = createApp({ broker: 'redis://127.0.0.1:6379' }); // loaded from the URL on demand
 *   // or: const broker = await connectBroker('rediss://user:secret@host:6380/0?prefix=myapp');
 *   // Redis Cluster: 'redis://node1:7001?cluster=1'. The server must use maxmemory-policy noeviction.
 */
import { DEFAULT_BROKER_OPTIONS, type Broker, type BrokerOptions, type ResultBackend } from '@celeriac/core';
import { openClient } from './connection.js';
import { ProducerLink } from './producer.js';
import { RedisBroker } from './broker.js';
import { KeyCache } from './keys.js';
import { RedisResultBackend } from './results.js';
import { Scripts } from './scripts.js';
import { parseRedisUrl } from './url.js';

export { RedisBroker } from './broker.js';
export { RedisResultBackend } from './results.js';
export { parseRedisUrl } from './url.js';
export type { RedisTarget } from './url.js';

/** Connects a broker (with its result store on the same connection) for a redis:// or rediss:// URL. */
export async function connectBroker(url: string, options: BrokerOptions = DEFAULT_BROKER_OPTIONS): Promise<Broker> {
  return connectRedisBroker(url, options);
}

/** The same as `connectBroker`, typed as the Redis broker (for `injectRaw` and Redis-specific tests). */
export async function connectRedisBroker(url: string, options: BrokerOptions = DEFAULT_BROKER_OPTIONS): Promise<RedisBroker> {
  const target = parseRedisUrl(url);
  return new RedisBroker(await openClient(target), target, options);
}

/** Connects a result store alone, for apps whose broker keeps no results (e.g. AMQP). */
export async function connectResults(url: string): Promise<ResultBackend> {
  const target = parseRedisUrl(url);
  const client = await openClient(target);
  return new RedisResultBackend(client, new Scripts(client), new KeyCache(target.prefix), { ownsClient: true, producer: new ProducerLink(client) });
}
