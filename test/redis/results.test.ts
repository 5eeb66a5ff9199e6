import type { ResultBackend, Settlement, TaskResult } from '@celeriac/core';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { connectResults } from '@celeriac/redis-backend';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, redisFixture, removePrefix, uniquePrefix, urlWith, type RedisFixture } from './helpers.js';

const settlement = (queue: string, id: string, value: unknown, state: TaskResult['state'] = 'succeeded'): Settlement => ({
  record: { id, queue, task: 't', state, value, attempts: 1, finishedAt: Date.now(), idempotencyKey: null },
  ttlMs: 60_000,
  keyTtlMs: 60_000,
});

// Issue 8 (defects 3 and 5 on RabbitMQ with Redis as its result store): the ResultBackend's task
// claims, fenced store and key reservations, on a store opened apart from any broker, as the
// RabbitMQ broker opens it; two stores stand for two processes.
describe('redis result store: task claims, fenced store, key reservations', () => {
  const prefix = uniquePrefix('res');
  let a: ResultBackend;
  let b: ResultBackend;
  beforeAll(async () => {
    [a, b] = await Promise.all([connectResults(urlWith(prefix, REDIS_URL)), connectResults(urlWith(prefix, REDIS_URL))]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await removePrefix(prefix);
  });

  it('declares itself shared', () => {
    expect(a.capabilities.shared).toBe(true);
  });

  it('leases a task id: acquired, busy for another owner, extendable, free again once the lease lapses', async () => {
    const ref = { queue: uniqueQueue(), id: 'task-1' };
    expect(await a.claimTask(ref, 'owner-a', 1_000)).toEqual({ status: 'acquired' });
    expect(await b.claimTask(ref, 'owner-b', 1_000)).toEqual({ status: 'busy' });
    expect(await a.claimTask(ref, 'owner-a', 1_000)).toEqual({ status: 'acquired' }); // renewed
    await sleep(1_100);
    expect(await b.claimTask(ref, 'owner-b', 30_000)).toEqual({ status: 'acquired' });
  });

  it("stores a fenced outcome only while its owner holds the claim: the stale owner's is refused, the new owner's kept", async () => {
    const queue = uniqueQueue();
    const ref = { queue, id: 'task-2' };
    expect(await a.claimTask(ref, 'stale', 150)).toEqual({ status: 'acquired' });
    await sleep(250); // the stale owner's lease lapses; a new delivery claims the task
    expect(await b.claimTask(ref, 'fresh', 30_000)).toEqual({ status: 'acquired' });
    expect(await a.store(settlement(queue, ref.id, 'stale', 'failed'), { owner: 'stale' })).toBe(false);
    expect(await a.get(ref)).toBeNull(); // nothing written, nobody woken
    const waiting = a.wait(ref, { timeoutMs: 5_000 });
    expect(await b.store(settlement(queue, ref.id, 'fresh'), { owner: 'fresh' })).toBe(true);
    expect(await waiting).toMatchObject({ state: 'succeeded', value: 'fresh' });
    // The claim went with the store; the late stale owner still cannot write, and the task is done.
    expect(await a.store(settlement(queue, ref.id, 'late'), { owner: 'stale' })).toBe(false);
    expect(await a.claimTask(ref, 'third', 30_000)).toMatchObject({ status: 'done', record: { value: 'fresh' } });
    expect(await b.get(ref)).toMatchObject({ value: 'fresh' });
  });

  it('reports any final record as done, and stores unfenced as before', async () => {
    const queue = uniqueQueue();
    const ref = { queue, id: 'task-3' };
    expect(await a.store(settlement(queue, ref.id, null, 'failed'))).toBe(true);
    expect(await b.claimTask(ref, 'x', 1_000)).toMatchObject({ status: 'done', record: { state: 'failed' } });
  });

  it('reserves each key once across stores: one owner per key under concurrent reservations', async () => {
    const queue = uniqueQueue();
    const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
    const attempts = keys.flatMap((key) => Array.from({ length: 5 }, (_, n) => ({ key, store: n % 2 ? a : b, id: `${key}-task-${n}` })));
    const owners = await Promise.all(attempts.map(({ key, store, id }) => store.reserveKey({ queue, key }, id, 60_000)));
    for (const key of keys) {
      const mine = owners.filter((_, i) => attempts[i]!.key === key);
      expect(new Set(mine).size).toBe(1);
      expect(mine[0]).toMatch(new RegExp(`^${key}-task-\\d$`));
    }
    expect(await a.reserveKey({ queue, key: 'key-0' }, 'late', 60_000)).toBe(owners[0]);
  });
});

describe('redis result store: one record per key, shared with the broker', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('resb');
  });
  afterAll(() => fx?.close());

  it('agrees with the broker on a key owner, and keeps every key of a queue under its hash tag', async () => {
    const queue = uniqueQueue();
    const { broker } = fx;
    const [published] = await broker.publish([makeMessage(queue, { idempotencyKey: 'k1' })], { keyTtlMs: 60_000 });
    expect(await broker.results.reserveKey({ queue, key: 'k1' }, 'other', 60_000)).toBe(published!.id);
    expect(await broker.results.reserveKey({ queue, key: 'k2' }, 'mine', 60_000)).toBe('mine');
    await broker.results.claimTask({ queue, id: 'c1' }, 'o', 60_000);
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${fx.prefix}:*`);
      expect(keys.length).toBeGreaterThanOrEqual(4);
      for (const key of keys) expect(key.startsWith(`${fx.prefix}:{${queue}}:`)).toBe(true);
    } finally {
      redis.disconnect();
    }
  });
});
