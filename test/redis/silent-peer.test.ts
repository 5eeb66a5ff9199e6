import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, type RedisBroker } from '@celeriac/redis-backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SILENT_PEER_MS } from '../../packages/redis-backend/src/connection.js';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

const KEY_TTL = { keyTtlMs: 60_000 };

/** Resolves with `p`'s outcome if it settles within `ms`, else with 'pending'. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'pending'> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)))]).finally(() => clearTimeout(timer));
};
const outcome = (p: Promise<void>) =>
  p.then(
    () => 'done',
    (err: Error) => `${err.name}: ${err.message}`,
  );

// The worker's path (fetch, settle, renew) ran on a connection with no bound against a silent
// peer: a command whose request (or reply) a partition swallowed waited for good, even after the
// network healed, since nothing ever reset the connection. Now a connection silent for
// SILENT_PEER_MS with a command awaiting its reply is redialled and the command resent.
describe('redis: the worker path against a silent peer', () => {
  let proxy: FaultProxy;
  let broker: RedisBroker;
  let direct: RedisBroker;
  const prefix = uniquePrefix('silent');
  beforeAll(async () => {
    proxy = await new FaultProxy(REDIS_URL).start();
    broker = await connectRedisBroker(urlWith(prefix, `redis://127.0.0.1:${proxy.port}`));
    direct = await connectRedisBroker(urlWith(prefix));
  });
  afterAll(async () => {
    proxy?.heal();
    await broker?.close();
    await direct?.close();
    await proxy?.close();
    await removePrefix(prefix);
  });

  const leaseOne = async (q: string) => {
    await direct.publish([makeMessage(q)], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 60_000, waitMs: 1_000 });
    expect(d).toBeDefined();
    return d!;
  };

  it('redials and resends an ack whose request a partition swallowed', async () => {
    const q = uniqueQueue('silent');
    const d = await leaseOne(q);
    proxy.drop();
    const ack = outcome(d.ack());
    await sleep(300); // the request is written and swallowed
    proxy.heal(); // the network is back, but this connection lost the request for good
    expect(await within(ack, SILENT_PEER_MS + 7_000)).toBe('done');
    expect(await direct.stats(q)).toMatchObject({ inFlight: 0, completed: 1 });
  }, 20_000);

  it('redials and resends an ack whose reply was swallowed: the resend answers what the first execution did', async () => {
    const q = uniqueQueue('silent');
    const d = await leaseOne(q);
    proxy.drop('replies');
    const ack = outcome(d.ack());
    await sleep(300); // Redis ran the settle; its reply is gone
    expect(await direct.stats(q)).toMatchObject({ inFlight: 0, completed: 1 });
    proxy.heal();
    // Resent on the new connection: the settle memo answers "acked", not LeaseLostError.
    expect(await within(ack, SILENT_PEER_MS + 7_000)).toBe('done');
    expect(await direct.stats(q)).toMatchObject({ inFlight: 0, completed: 1 });
  }, 20_000);

  it('does not cut the redialled connection again when the socket timer of the dropped one runs out', async () => {
    const q = uniqueQueue('silent');
    const d = await leaseOne(q);
    const closed = proxy.closed;
    proxy.dropNextReply(); // Redis runs the ack; the connection is reset before its reply arrives
    expect(await within(outcome(d.ack()), 5_000)).toBe('done'); // resent on the redialled connection
    expect(proxy.closed).toBe(closed + 1);
    // ioredis left the dropped connection's timer running: it used to destroy the new one here.
    await sleep(SILENT_PEER_MS + 1_000);
    expect(proxy.closed).toBe(closed + 1);
  }, 20_000);

  it('leaves a blocking fetch that waits longer than SILENT_PEER_MS alone', async () => {
    const q = uniqueQueue('silent');
    await broker.fetch({ queues: [q], max: 1, leaseMs: 60_000, waitMs: 10 }); // opens the blocking connection
    await sleep(200); // any close from the warm-up has reached the proxy
    const closed = proxy.closed;
    const waitMs = SILENT_PEER_MS + 2_000;
    const fetching = broker.fetch({ queues: [q], max: 1, leaseMs: 60_000, waitMs });
    await sleep(SILENT_PEER_MS + 1_000);
    const [published] = await direct.publish([makeMessage(q)], KEY_TTL);
    const got = await fetching;
    expect(got.map((d) => d.message.id)).toEqual([published!.id]); // woken by the publish
    expect(proxy.closed).toBe(closed); // no connection was cut meanwhile (the BLPOP's included)
    await got[0]!.ack();
  }, 20_000);
});
