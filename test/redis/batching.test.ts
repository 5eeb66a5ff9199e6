import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { makeMessage, sleep, uniqueQueue } from '@celeriac/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScripts, type ScriptName } from '../../packages/redis-backend/src/scripts.js';
import { REDIS_URL, redisFixture, type RedisFixture } from './helpers.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const sha = (name: ScriptName) => createHash('sha1').update(loadScripts().get(name)!.lua).digest('hex');

/**
 * Watches the commands our connections send, through `redis-cli monitor` (the real server's own
 * account, no mock). Other clients may share the server, so only lines naming our key prefix count.
 */
async function watch(prefix: string) {
  const url = new URL(REDIS_URL);
  const cli = spawn('redis-cli', ['-h', url.hostname, '-p', url.port || '6379', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const seen: { command: string; first: string }[] = [];
  let buffer = '';
  cli.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (!line.includes(prefix)) continue;
      const [command = '', first = ''] = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
      seen.push({ command: command.toLowerCase(), first });
    }
  });
  await new Promise((resolve) => cli.stdout.once('data', resolve)); // "OK": monitoring
  return {
    // A script call is EVALSHA (or EVAL the first time a server sees the script).
    count: (name: ScriptName) => seen.filter((a) => (a.command === 'evalsha' && a.first === sha(name)) || (a.command === 'eval' && a.first.startsWith(`--[[ ${name}:`))).length,
    commands: (cmd: string) => seen.filter((a) => a.command === cmd).length,
    stop: async () => {
      await sleep(150); // MONITOR lines trail the replies a little
      cli.kill();
    },
  };
}

describe('redis: batching and blocking', () => {
  let fx: RedisFixture;
  beforeAll(async () => {
    fx = await redisFixture('batch');
  });
  afterAll(() => fx?.close());

  it('leases many messages in one script call and settles a tick of acks in one more', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const msgs = Array.from({ length: 150 }, (_, i) => makeMessage(q, { payload: { i }, priority: i % 3 }));
    await broker.publish(msgs, KEY_TTL);
    const m = await watch(fx.prefix);
    const got = await broker.fetch({ queues: [q], max: 100, leaseMs: 30_000, waitMs: 1_000 });
    expect(got).toHaveLength(100);
    // Most urgent first, FIFO within a priority.
    expect(got.slice(0, 50).every((d) => d.message.priority === 2)).toBe(true);
    const twos = got.filter((d) => d.message.priority === 2).map((d) => (d.message.payload as { i: number }).i);
    expect(twos).toEqual([...twos].sort((a, b) => a - b));
    await Promise.all(got.map((d) => d.ack()));
    expect(await broker.renew(got.slice(0, 1), 1_000)).toEqual([false]);
    await m.stop();
    expect(m.count('fetch')).toBe(1);
    expect(m.count('settle')).toBe(1);
    expect(m.count('renew')).toBe(1);
    expect(await broker.stats(q)).toMatchObject({ ready: 50, inFlight: 0, completed: 100 });
  });

  it('coalesces concurrent one-by-one publishes into one script call, each caller getting its own result', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const msgs = Array.from({ length: 50 }, () => makeMessage(q));
    const m = await watch(fx.prefix);
    const results = await Promise.all([...msgs.map((msg) => broker.publish([msg], KEY_TTL)), broker.publish([msgs[0]!], KEY_TTL)]);
    await m.stop();
    expect(m.count('publish')).toBe(1);
    expect(results.slice(0, 50)).toEqual(msgs.map((msg) => [{ id: msg.id, duplicate: false }]));
    expect(results[50]).toEqual([{ id: msgs[0]!.id, duplicate: true }]); // as if it came after the others
    expect((await broker.stats(q)).ready).toBe(50);
  });

  it('blocks an idle fetch on Redis without polling, and wakes within milliseconds of a publish', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const m = await watch(fx.prefix);
    const idle = await broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 1_200 });
    expect(idle).toEqual([]);
    await m.stop();
    // One look before blocking, one BLPOP for the whole wait (and one look at its end).
    expect(m.count('fetch')).toBeLessThanOrEqual(2);
    expect(m.commands('blpop')).toBe(1);

    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const pending = broker.fetch({ queues: [q], max: 10, leaseMs: 30_000, waitMs: 5_000 });
      await sleep(30);
      const sent = performance.now();
      await broker.publish([makeMessage(q)], KEY_TTL);
      const [d] = await pending;
      latencies.push(performance.now() - sent);
      await d!.ack();
    }
    latencies.sort((a, b) => a - b);
    expect(latencies[5]).toBeLessThan(100); // median wake-up; generous for a shared, loaded 2-core machine
  });

  it('shortens a blocked wait when an earlier delayed task arrives', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const started = Date.now();
    const pending = broker.fetch({ queues: [q], max: 1, leaseMs: 30_000, waitMs: 5_000 });
    await sleep(50);
    const msg = makeMessage(q, { eta: Date.now() + 300 });
    await broker.publish([msg], KEY_TTL);
    const [d] = await pending;
    expect(d?.message.id).toBe(msg.id);
    expect(Date.now()).toBeGreaterThanOrEqual(msg.eta!);
    expect(Date.now() - started).toBeLessThan(2_000);
    await d!.ack();
  });

  it('hands a burst to several blocked fetchers, not just the first', async () => {
    const { broker } = fx;
    const q = uniqueQueue();
    const fetchers = Array.from({ length: 3 }, () => broker.fetch({ queues: [q], max: 2, leaseMs: 30_000, waitMs: 3_000 }));
    await sleep(50);
    const started = Date.now();
    await broker.publish(Array.from({ length: 6 }, () => makeMessage(q)), KEY_TTL);
    const got = await Promise.all(fetchers);
    expect(got.map((g) => g.length)).toEqual([2, 2, 2]);
    expect(Date.now() - started).toBeLessThan(1_000);
    await Promise.all(got.flat().map((d) => d.ack()));
  });
});
