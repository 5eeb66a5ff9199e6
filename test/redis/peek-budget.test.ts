import { createApp, MAX_PEEK_BYTES } from '@celeriac/core';
import { makeMessage, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { celeriac, killLeftovers } from '../support/celeriac-cli.js';
import { redisFixture, urlWith, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const BODY = 900 * 1024; // each message a little under the default 1 MiB limit
const fits = Math.ceil(MAX_PEEK_BYTES / (BODY + 200)); // bodies read until the total reaches the budget

// A peek runs as one script, which blocks Redis: with big messages it stops reading bodies once
// its reply holds MAX_PEEK_BYTES (the first always), rather than copying up to MAX_PEEK of them.
describe('redis: peek of big messages stops at its byte budget', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('peekbytes');
  });
  afterAll(async () => fx?.close());

  const big = (queue: string, i: number, eta: number | null) => makeMessage(queue, { payload: { i, blob: 'x'.repeat(BODY) }, eta });

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

// The dead-letter listing is one script too: it reads letters from the newest and stops once its
// reply holds MAX_PEEK_BYTES (the newest always); a redrive of them all still finds every one.
describe('redis: dead letters of big messages', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('deadbytes');
  });
  afterAll(async () => fx?.close());
  afterEach(killLeftovers);

  async function bury(queue: string, count: number): Promise<string[]> {
    const msgs = Array.from({ length: count }, (_, i) => makeMessage(queue, { payload: { i, blob: 'x'.repeat(BODY) } }));
    for (const m of msgs) {
      await fx.broker.publish([m], KEY_TTL);
      const [d] = await fx.broker.fetch({ queues: [queue], max: 1, leaseMs: 30_000, waitMs: 1_000 });
      await d!.deadLetter(`dead ${m.id}`);
    }
    return msgs.map((m) => m.id);
  }

  it('lists the newest letters up to the budget, oldest first, fewer than the limit', async () => {
    const queue = uniqueQueue('db');
    const ids = await bury(queue, fits + 2);
    const listed = await fx.broker.deadLetters(queue, 100);
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.length).toBeLessThan(ids.length);
    expect(listed.map((l) => l.id)).toEqual(ids.slice(ids.length - listed.length));
    const bytes = listed.map((l) => JSON.stringify(l).length);
    expect(bytes.slice(1).reduce((a, b) => a + b, 0)).toBeLessThan(MAX_PEEK_BYTES); // stopped once at the budget
    expect(await fx.broker.deadLetterIds(queue)).toEqual(ids);
    expect(await fx.broker.stats(queue)).toMatchObject({ dead: ids.length });
  });

  it('celeriac inspect dead says how many there are when its listing stops at the budget', async () => {
    const queue = uniqueQueue('dbc');
    const ids = await bury(queue, fits + 2);
    const run = celeriac(['inspect', 'dead', queue, '--broker', urlWith(fx.prefix)]);
    expect(await run.exited).toBe(0);
    const rows = run.stdout.filter((l) => ids.some((id) => l.startsWith(id)));
    expect(rows.length).toBeLessThan(ids.length);
    expect(run.stderr).toContain(`showing ${rows.length} of ${ids.length} dead letters: a listing stops at 4 MiB of letters (redrive without --id takes them all)`);
    await fx.broker.discard(queue, { ids });
  });

  it('always lists the newest letter, however big', async () => {
    const queue = uniqueQueue('db1');
    const [id] = await bury(queue, 1);
    expect((await fx.broker.deadLetters(queue, 1)).map((l) => l.id)).toEqual([id]);
  });

  it('app.control.redrive of them all puts back every letter, past the listing budget', async () => {
    const queue = uniqueQueue('db2');
    const ids = await bury(queue, fits + 2);
    const app = createApp({ broker: fx.broker, defaultQueue: queue });
    const result = await app.control.redrive(queue);
    expect([...result.redriven].sort()).toEqual([...ids].sort());
    expect(await fx.broker.deadLetterIds(queue)).toEqual([]);
    await fx.broker.purge(queue);
  });
});
