import { DEAD_LETTER_QUEUED } from '@celeriac/core';
import { collect, makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisFixture, type RedisFixture } from './helpers.js';

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
