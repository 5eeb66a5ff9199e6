import { randomUUID } from 'node:crypto';
import { DEFAULT_BROKER_OPTIONS, type BrokerOptions } from '@celeriac/core';
import type { BrokerFixture } from '@celeriac/core/testing';
import { connectRedisBroker, type RedisBroker } from '@celeriac/redis-backend';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.CELERIAC_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own for each test file or fixture: tests share one Redis and never FLUSHALL. */
export function uniquePrefix(name = 't'): string {
  return `ctest-${name}-${randomUUID().slice(0, 8)}`;
}

export function urlWith(prefix: string, base = REDIS_URL, extra = ''): string {
  return `${base}${base.includes('?') ? '&' : '?'}prefix=${prefix}${extra}`;
}

/** Deletes every key under `prefix` (SCAN + UNLINK: only our own keys); fails fast when Redis is gone. */
export async function removePrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface RedisFixture extends BrokerFixture {
  broker: RedisBroker;
  prefix: string;
}

/** A broker under a prefix of its own; `options` as an app would pass them (default: core's). */
export async function redisFixture(name = 'fx', extra = '', options: BrokerOptions = DEFAULT_BROKER_OPTIONS): Promise<RedisFixture> {
  const prefix = uniquePrefix(name);
  const broker = await connectRedisBroker(urlWith(prefix, REDIS_URL, extra), options);
  return {
    broker,
    prefix,
    injectRaw: (queue, raw) => broker.injectRaw(queue, raw),
    close: async () => {
      await broker.close();
      await removePrefix(prefix);
    },
  };
}
