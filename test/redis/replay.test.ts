import { LeaseLostError, nextAttempt, type TaskMessage } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectRedisBroker, connectResults, type RedisBroker } from '@celeriac/redis-backend';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueKeys } from '../../packages/redis-backend/src/keys.js';
import { loadScripts } from '../../packages/redis-backend/src/scripts.js';
import type { RedisDelivery } from '../../packages/redis-backend/src/settler.js';
import { REDIS_URL, removePrefix, uniquePrefix } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const succeeded = (msg: TaskMessage) => ({
  record: { id: msg.id, queue: msg.queue, task: msg.task, state: 'succeeded' as const, value: 1, attempts: 1, finishedAt: Date.now(), idempotencyKey: null },
  ttlMs: 60_000,
  keyTtlMs: 60_000,
});

// When the connection drops after the server ran a script but before its reply arrived, ioredis
// resends the call once it has reconnected. A resent fetch used to lease the NEXT batch, leaving
// the first one leased to nobody (back after leaseMs with a lapse each: a spent attempt), and a
// resent ack found its own lease settled and reported LeaseLostError although it took effect.
describe('redis: a call resent after its reply was lost answers what its first execution did', () => {
  let proxy: FaultProxy;
  let broker: RedisBroker;
  let raw: Redis;
  const prefix = uniquePrefix('replay');
  beforeAll(async () => {
    proxy = await new FaultProxy(REDIS_URL).start();
    broker = await connectRedisBroker(`redis://127.0.0.1:${proxy.port}?prefix=${prefix}`);
    raw = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await broker?.close();
    await proxy?.close();
    raw?.disconnect();
    await removePrefix(prefix);
  });

  /** Loads the scripts and opens every connection, so that the cut lands on the call under test. */
  const warmUp = async () => {
    const q = uniqueQueue('warm');
    await broker.publish([makeMessage(q)], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    await d!.ack();
  };
  /** Cuts the connection after the server ran the next command, before its reply gets through. */
  const loseNextReply = async <T>(call: () => Promise<T>): Promise<T> => {
    const cuts = proxy.cuts;
    proxy.dropNextReply();
    const out = await call();
    expect(proxy.cuts).toBe(cuts + 1); // the cut happened (on this call's reply)
    return out;
  };
  const memos = async (q: string, kind: 'fetched' | 'settled'): Promise<string[]> => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}:{${q}}:${kind}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found;
  };

  it('fetch: the resend returns the batch the first execution leased, with lapses 0, and nothing comes back later with a lapse', async () => {
    await warmUp();
    const q = uniqueQueue();
    const msgs = [makeMessage(q), makeMessage(q), makeMessage(q)];
    await broker.publish(msgs, KEY_TTL);
    const leaseMs = 3_000; // the resend comes within a reconnect (about 0.2 s), well inside it
    const got = await loseNextReply(() => broker.fetch({ queues: [q], max: 10, leaseMs, waitMs: 1_000 }));
    expect(got.map((d) => [d.message.id, d.lapses])).toEqual(msgs.map((m) => [m.id, 0]));
    await Promise.all(got.map((d) => d.ack())); // their tokens hold the leases
    await sleep(leaseMs + 300);
    expect(await broker.fetch({ queues: [q], max: 10, leaseMs, waitMs: 300 })).toEqual([]);
    expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0, completed: 3 });
  });

  it('settle: an ack resent after its reply was lost resolves, and the task finished once', async () => {
    await warmUp();
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    await loseNextReply(() => d!.ack(succeeded(msg))); // rejected with LeaseLostError before the fix
    expect(await broker.results.get(msg)).toMatchObject({ state: 'succeeded', value: 1 });
    expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0, completed: 1 });
    expect(await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 200 })).toEqual([]);
  });

  it('settle: a retry resent after its reply was lost resolves, and the next attempt comes once, with lapses 0', async () => {
    await warmUp();
    const q = uniqueQueue();
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    const [d] = await broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 1_000 });
    const next = nextAttempt(msg, 1, { name: 'Error', message: 'boom' }, Date.now());
    await loseNextReply(() => d!.retry(next, Date.now()));
    const again = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 1_000 });
    expect(again.map((a) => [a.message.id, a.message.attempt, a.lapses])).toEqual([[msg.id, 2, 0]]);
    await again[0]!.ack();
    expect(await broker.stats(q)).toMatchObject({ ready: 0, delayed: 0, inFlight: 0, completed: 1 });
  });

  it('deletes the memos of answered calls, a batch at a time, so few stay behind', async () => {
    const q = uniqueQueue();
    const msgs = Array.from({ length: 10 }, () => makeMessage(q));
    await broker.publish(msgs, KEY_TTL);
    const got = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 1_000 });
    for (const d of got) await d.ack(); // ten settle calls, one after the other
    // The ninth call deleted the memos of the first eight (calls.ts, FORGET_AT_ONCE): two are left.
    expect((await memos(q, 'settled')).length).toBe(2);
    expect((await memos(q, 'fetched')).length).toBe(1); // the fetch's, until its lease length
  });

  it('keeps the fence: a token that never held the lease gets 0, on the first execution and on its resend', async () => {
    const q = uniqueQueue();
    const keys = new QueueKeys(prefix, q);
    const settle = loadScripts().get('settle')!.lua;
    const msgs = [makeMessage(q), makeMessage(q)];
    await broker.publish(msgs, KEY_TTL);
    const [d1, d2] = (await broker.fetch({ queues: [q], max: 2, leaseMs: 30_000, waitMs: 1_000 })) as RedisDelivery[];
    const run = (call: string, ops: string[]) => raw.eval(settle, 7, ...keys.main, keys.base, 60_000, '', '', Date.now(), 100, 60_000, call, 60_000, '', ...ops);
    const ops = ['A', d1!.storedId, d1!.token, 'A', d2!.storedId, `${d2!.token}-forged`];
    expect(await run('call-1', ops)).toEqual([1, 0]);
    expect(await run('call-1', ops)).toEqual([1, 0]); // a resend: the same answer, nothing done twice
    expect(await run('call-2', ops)).toEqual([0, 0]); // another call is no resend: the fence holds
    await expect(d1!.ack()).rejects.toBeInstanceOf(LeaseLostError);
    await d2!.ack(); // the forged token changed nothing
    expect(await broker.stats(q)).toMatchObject({ inFlight: 0, completed: 2 });
  });

  it('result store: a fenced store resent after its reply was lost answers stored; a stale owner is still refused', async () => {
    const results = await connectResults(`redis://127.0.0.1:${proxy.port}?prefix=${prefix}`);
    try {
      const q = uniqueQueue();
      const [msg, other] = [makeMessage(q), makeMessage(q)];
      await results.store(succeeded(other)); // the script is loaded, the connection open
      expect(await results.claimTask(msg, 'owner-1', 30_000)).toEqual({ status: 'acquired' });
      // The first execution stored the record and released the claim; before the fix the resend
      // found the claim gone and answered "fenced out" for the owner's own stored outcome.
      expect(await loseNextReply(() => results.store(succeeded(msg), { owner: 'owner-1' }))).toBe(true);
      expect(await results.get(msg)).toMatchObject({ state: 'succeeded', value: 1 });
      const late = { ...succeeded(msg), record: { ...succeeded(msg).record, value: 'stale' } };
      expect(await results.store(late, { owner: 'owner-0' })).toBe(false);
      expect(await results.get(msg)).toMatchObject({ value: 1 });
    } finally {
      await results.close();
    }
  });

  it('under repeated resets (a reply cut every 0.4 s) runs each task once: no lapse, no LeaseLostError', async () => {
    const q = uniqueQueue();
    const n = 600;
    await broker.publish(Array.from({ length: n }, () => makeMessage(q)), KEY_TTL);
    const cutsBefore = proxy.cuts;
    let stop = false;
    let rounds = 0;
    const cutter = (async () => {
      while (!stop) {
        await sleep(400);
        // The next cut only once a fetch-and-ack round got through since the last one. On a clock
        // alone, a loaded machine whose reconnect outlasts 0.4 s saw each reconnect cut in turn
        // (the cut takes whichever reply comes next, a handshake's too): the client never got back,
        // and the test hung past its own 20 s bound into the test timeout.
        const seen = rounds;
        while (!stop && rounds === seen) await sleep(10);
        if (!stop) proxy.dropNextReply();
      }
    })();
    const seen = new Map<string, number>();
    let lapsed = 0;
    let lost = 0;
    try {
      const started = performance.now();
      while (seen.size < n && performance.now() - started < 20_000) {
        const got = await broker.fetch({ queues: [q], max: 10, leaseMs: 5_000, waitMs: 300 });
        await sleep(30); // the handlers' work: the cuts land on fetches and on acks alike
        for (const d of got) {
          seen.set(d.message.id, (seen.get(d.message.id) ?? 0) + 1);
          if (d.lapses > 0) lapsed++;
        }
        await Promise.all(got.map((d) => d.ack().catch((err: unknown) => (err instanceof LeaseLostError ? lost++ : Promise.reject(err)))));
        rounds++;
      }
    } finally {
      stop = true;
      await cutter;
      proxy.disarm(); // a cut still armed would land on the next test's first reply
    }
    expect(proxy.cuts - cutsBefore).toBeGreaterThanOrEqual(3);
    expect({ delivered: seen.size, twice: [...seen.values()].filter((k) => k > 1).length, lapsed, lost }).toEqual({ delivered: n, twice: 0, lapsed: 0, lost: 0 });
    expect(await broker.stats(q)).toMatchObject({ ready: 0, inFlight: 0, completed: n });
  }, 40_000);

  it('ends an idle fetch within its bound when its wait connection cannot reconnect', async () => {
    const q = uniqueQueue();
    const idle = await connectRedisBroker(`redis://127.0.0.1:${proxy.port}?prefix=${prefix}`);
    try {
      expect(await idle.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 200 })).toEqual([]); // the wait connection is open
      const started = performance.now();
      const fetching = idle.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 500 });
      await sleep(100); // in BLPOP, on the connection opened last
      proxy.refuse();
      proxy.cut('newest'); // it keeps trying to reconnect; the main connection stays up
      // Before the fix the bound (wait + 2 s grace) disconnected it during a reconnect delay,
      // which left the BLPOP, and the fetch, pending for good.
      const outcome = await Promise.race([fetching, sleep(10_000).then(() => 'still pending')]);
      expect(outcome).toEqual([]);
      expect(performance.now() - started).toBeLessThan(8_000); // 0.5 s + 2 s grace + a look
    } finally {
      proxy.heal();
      await idle.close();
    }
  });

  it('fetch script: a repeated call returns its batch under the same tokens, without what it no longer holds', async () => {
    const q = uniqueQueue();
    const keys = new QueueKeys(prefix, q);
    const scripts = loadScripts();
    const msgs = [makeMessage(q), makeMessage(q), makeMessage(q)];
    await broker.publish(msgs, KEY_TTL);
    const fetch = (tokenBase: string) => raw.eval(scripts.get('fetch')!.lua, 7, ...keys.main, keys.base, 2, 30_000, tokenBase, '') as Promise<unknown[]>;
    const ack = (id: string, token: string) => raw.eval(scripts.get('settle')!.lua, 7, ...keys.main, keys.base, 60_000, '', '', Date.now(), 100, 60_000, `ack-${token}`, 60_000, '', 'A', id, token);
    const first = await fetch('tb');
    const [a, b, c] = msgs.map((m) => m.id);
    expect(first.slice(3)).toEqual([a, JSON.stringify(msgs[0]), 0, b, JSON.stringify(msgs[1]), 0]);
    expect((await fetch('tb')).slice(3)).toEqual(first.slice(3)); // nothing more leased
    expect(await ack(a!, 'tb.1')).toEqual([1]); // the tokens are the first execution's
    // Settled since: its place stays (tokens are numbered by position) but it is not delivered.
    expect((await fetch('tb')).slice(3)).toEqual([a, null, 0, b, JSON.stringify(msgs[1]), 0]);
    expect((await fetch('tb-2')).slice(3)).toEqual([c, JSON.stringify(msgs[2]), 0]);
    expect(await ack(b!, 'tb.2')).toEqual([1]);
    expect(await ack(c!, 'tb-2.1')).toEqual([1]);
  });
});

