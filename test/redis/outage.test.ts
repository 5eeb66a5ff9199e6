import { BackendError, DEFAULT_BROKER_OPTIONS } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, type RedisBroker } from '@celeriac/redis-backend';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix, urlWith } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { ensureRedisServer, reachable, redisCli, waitUntil } from './servers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
/** A private redis-server this file stops and restarts (never the shared one on 6379). */
const PORT = 7031;

async function stopServer(): Promise<void> {
  try {
    redisCli(PORT, 'shutdown', 'nosave');
  } catch {
    // redis-cli reports the connection the server closed on its way down
  }
  await waitUntil(async () => !(await reachable(PORT)), `redis-server on ${PORT} to stop`);
}

// Issue 8, defect 12 (Redis): with Redis down, a publish settled only after ioredis' 20 reconnect
// attempts (52–116 s), and a command rejected by a timeout could still be sent later.
describe('redis: publishing while Redis is unreachable', () => {
  let broker: RedisBroker | undefined;
  afterAll(async () => {
    await ensureRedisServer(PORT); // leave it running, as other runs expect to find or start it
    await broker?.close();
  });

  it('rejects within a bound, never sends the rejected publish later, and a waiting fetch carries on once Redis is back', async () => {
    await ensureRedisServer(PORT);
    broker = await connectRedisBroker(`redis://127.0.0.1:${PORT}?prefix=${uniquePrefix('down')}`);
    const q = uniqueQueue();
    await broker.publish([makeMessage(q)], KEY_TTL); // the producer connection is open
    await stopServer();

    const fetching = broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 25_000 });
    const lost = makeMessage(q);
    const started = performance.now();
    const error = await broker.publish([lost], KEY_TTL).then(
      () => null,
      (err: unknown) => err,
    );
    const tookMs = performance.now() - started;
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).message).toMatch(/publishing 1 message\(s\) to queue .* failed: Redis did not answer \(the connection dropped and was not restored in time\). The command will not be sent again/);
    expect(tookMs).toBeLessThan(6_000); // documented: about 2.2 s when connections are refused

    await ensureRedisServer(PORT); // back, empty (no persistence)
    await sleep(2_500); // every connection has reconnected: a publish still queued would be sent by now
    expect(await broker.state(lost)).toBeNull();
    expect((await broker.stats(q)).ready).toBe(0);

    // The worker path waited the outage out and still delivers what is published now.
    const fresh = makeMessage(q);
    expect(await broker.publish([fresh], KEY_TTL)).toEqual([{ id: fresh.id, duplicate: false }]);
    const [d] = await fetching;
    expect(d?.message.id).toBe(fresh.id);
    await d!.ack();
  }, 40_000);

  it('rejects a publish caught in a silent partition within a bound, and never sends it after', async () => {
    const proxy = await new FaultProxy(REDIS_URL).start();
    const prefix = uniquePrefix('silent');
    const cut = await connectRedisBroker(urlWith(prefix, `redis://127.0.0.1:${proxy.port}`), { ...DEFAULT_BROKER_OPTIONS, publishTimeoutMs: 4_000 });
    try {
      const q = uniqueQueue();
      await cut.publish([makeMessage(q)], KEY_TTL); // the producer connection is open
      proxy.drop();
      const lost = makeMessage(q);
      const started = performance.now();
      const error = await cut.publish([lost], KEY_TTL).then(
        () => null,
        (err: unknown) => err,
      );
      const tookMs = performance.now() - started;
      expect(error).toBeInstanceOf(BackendError);
      expect((error as Error).message).toMatch(/Redis did not answer .*The command will not be sent again/);
      // The producer path's bound: the app's enqueueTimeoutMs, passed as publishTimeoutMs.
      expect(tookMs).toBeGreaterThanOrEqual(3_900);
      expect(tookMs).toBeLessThan(8_000);
      proxy.heal();
      await sleep(2_500); // reconnected: a publish still queued anywhere would be sent by now
      expect(await cut.state(lost)).toBeNull();
      expect(await cut.publish([lost], KEY_TTL)).toEqual([{ id: lost.id, duplicate: false }]); // the caller may simply retry
    } finally {
      await cut.close();
      await proxy.close();
    }
  }, 40_000);
});
