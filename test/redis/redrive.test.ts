import { DEAD_LETTER_QUEUED } from '@celeriac/core';
import { collect, makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { REDIS_URL, redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };

// A task id can be dead-lettered and queued at once once its tombstone has expired (here after
// 1 ms, `?tombstoneMs=1`) and it is published again: Redis keys dead letters by id.
describe('redis: dead letters of an id that is queued again', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('redrive', '&tombstoneMs=1');
  });
  afterAll(async () => fx?.close());

  it('refuses to redrive a letter whose task is queued now, and a second death replaces the first letter', async () => {
    const { broker } = fx;
    const q = uniqueQueue('rr');
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    await (await collect(broker, q, 1))[0]!.deadLetter('first death');
    await sleep(20);
    expect(await broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: false }]);

    expect(await broker.redrive(q, { ids: [msg.id] })).toEqual({ redriven: [], refused: [{ id: msg.id, reason: DEAD_LETTER_QUEUED }] });
    expect((await broker.deadLetters(q)).map((d) => [d.id, d.reason])).toEqual([[msg.id, 'first death']]);

    const [again] = await collect(broker, q, 1);
    expect(again!.message.id).toBe(msg.id);
    await again!.deadLetter('second death');
    expect((await broker.deadLetters(q)).map((d) => [d.id, d.reason])).toEqual([[msg.id, 'second death']]);
    expect((await broker.stats(q)).dead).toBe(1);
  });
});

describe('redis: a full dead-letter place', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('deadmany');
  });
  afterAll(async () => fx?.close());

  it('lists more letters than one script call can unpack at once (8,500 of the 10,000 retention keeps)', async () => {
    const q = uniqueQueue('dm');
    // Written straight into the layout lib/dead.lua keeps (burying 8,500 through fetches would take minutes).
    const base = `${fx.prefix}:{${q}}:`;
    const redis = new Redis(REDIS_URL);
    try {
      const now = Date.now();
      const pipeline = redis.pipeline();
      for (let i = 0; i < 8_500; i++) {
        const id = `dead-${i}`;
        pipeline.zadd(`${base}dead:at`, (now * 1000 + i).toString(), id);
        pipeline.hset(`${base}dead:letters`, id, JSON.stringify({ id, raw: '{}', reason: 'r', error: null, at: now }));
      }
      await pipeline.exec();
    } finally {
      redis.disconnect();
    }
    const letters = await fx.broker.deadLetters(q, 10_000);
    expect(letters).toHaveLength(8_500);
    expect([letters[0]!.id, letters.at(-1)!.id]).toEqual(['dead-0', 'dead-8499']);
  }, 60_000);
});
