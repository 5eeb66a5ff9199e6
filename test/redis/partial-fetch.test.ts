import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { QueueKeys } from '../../packages/redis-backend/src/keys.js';
import { REDIS_URL, redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };

// A fetch over several queues runs one script call per queue. When a later call failed (or the
// burial of a malformed message did), the deliveries already leased from earlier queues were
// neither returned nor released: they came back after the lease with a lapse each, an attempt
// spent without running.
describe('redis: a multi-queue fetch that fails part-way', () => {
  const raw = new Redis(REDIS_URL);
  const fixtures: RedisFixture[] = [];
  afterAll(async () => {
    for (const f of fixtures) await f.close();
    raw.disconnect();
  });
  const open = async () => {
    const fx = await redisFixture('partial');
    fixtures.push(fx);
    return fx;
  };

  it('returns what it leased from earlier queues, and reports the failure on the next call', async () => {
    const { broker, prefix } = await open();
    const a = uniqueQueue('pa');
    const b = uniqueQueue('pb');
    await broker.publish([makeMessage(a), makeMessage(a)], KEY_TTL);
    // Queue b's script call fails (a key of the wrong type): a broken queue, as a script error.
    await raw.set(new QueueKeys(prefix, b).base + 'ready:9', 'not a list');

    // The first multi-queue fetch of a fresh broker takes from a first, then b.
    const got = await broker.fetch({ queues: [a, b], max: 10, leaseMs: 30_000, waitMs: 0 });
    expect(got.map((d) => [d.message.queue, d.lapses])).toEqual([
      [a, 0],
      [a, 0],
    ]);
    await expect(broker.fetch({ queues: [a, b], max: 10, leaseMs: 30_000, waitMs: 0 })).rejects.toThrow(/WRONGTYPE/);
    for (const d of got) await d.ack();
    expect(await broker.stats(a)).toMatchObject({ ready: 0, inFlight: 0, completed: 2 });
  });

  it('returns the well-formed deliveries of a call whose malformed message could not be buried', async () => {
    const { broker, prefix } = await open();
    const a = uniqueQueue('pa');
    await broker.publish([makeMessage(a)], KEY_TTL);
    await broker.injectRaw(a, '{not json');
    // The dead-letter set of a has the wrong type: the burial's settle call fails.
    await raw.set(new QueueKeys(prefix, a).dead[0], 'not a sorted set');

    const got = await broker.fetch({ queues: [a], max: 10, leaseMs: 30_000, waitMs: 0 });
    expect(got.map((d) => [d.message.queue, d.lapses])).toEqual([[a, 0]]);
    await expect(broker.fetch({ queues: [a], max: 10, leaseMs: 30_000, waitMs: 0 })).rejects.toThrow(/settling 1 deliveries .*WRONGTYPE/);
    await got[0]!.ack();
  });

  it('still throws when nothing was leased before the failure', async () => {
    const { broker, prefix } = await open();
    const b = uniqueQueue('pb');
    await raw.set(new QueueKeys(prefix, b).base + 'ready:9', 'not a list');
    await expect(broker.fetch({ queues: [b], max: 10, leaseMs: 30_000, waitMs: 0 })).rejects.toThrow(/WRONGTYPE/);
  });
});
