import { MAX_PEEK_BYTES } from '@celeriac/core';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const BODY = 900 * 1024; // each message a little under the default 1 MiB limit

// A peek runs as one script, which blocks Redis: with big messages it stops reading bodies once
// its reply holds MAX_PEEK_BYTES (the first always), rather than copying up to MAX_PEEK of them.
describe('redis: peek of big messages stops at its byte budget', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('peekbytes');
  });
  afterAll(async () => fx?.close());

  const big = (queue: string, i: number, eta: number | null) => makeMessage(queue, { payload: { i, blob: 'x'.repeat(BODY) }, eta });
  const fits = Math.ceil(MAX_PEEK_BYTES / (BODY + 200)); // bodies read until the total reaches the budget

  it.each(['ready', 'delayed'] as const)('%s: returns the first messages up to the budget, in order, fewer than the limit', async (state) => {
    const queue = uniqueQueue('pb');
    const eta = state === 'delayed' ? Date.now() + 3_600_000 : null;
    const msgs = Array.from({ length: fits + 2 }, (_, i) => big(queue, i, eta === null ? null : eta + i * 60_000));
    for (const m of msgs) await fx.broker.publish([m], KEY_TTL);
    const listed = await fx.broker.peek(queue, { state, limit: 100 });
    expect(listed.map((m) => (m.payload as { i: number }).i)).toEqual(msgs.slice(0, fits).map((_, i) => i));
    expect(await fx.broker.stats(queue)).toMatchObject(state === 'ready' ? { ready: fits + 2 } : { delayed: fits + 2 });
  });

  it('always lists the first message, however big', async () => {
    const queue = uniqueQueue('pb1');
    await fx.broker.publish([big(queue, 0, null)], KEY_TTL);
    expect(await fx.broker.peek(queue, { state: 'ready', limit: 1 })).toHaveLength(1);
  });
});
