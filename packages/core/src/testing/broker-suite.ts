import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../broker.js';
import { LeaseLostError } from '../errors.js';
import { nextAttempt } from '../retry.js';
import type { ResultBackend, TaskResult } from '../results.js';
import type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
import { makeMessage, sleep, uniqueQueue } from './messages.js';
import { describePeekRules, offersPeek } from './peek-suite.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LONG_LEASE = 30_000;

/** The broker contract, rule by rule (see `Broker` in broker.ts), driven through the contract alone. */
export function describeBrokerContract(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  const shortLease = options.shortLeaseMs ?? 250;

  describe(`${name}: broker contract`, async () => {
    let fx: BrokerFixture;
    let broker: Broker;
    let results: ResultBackend;
    beforeAll(async () => {
      fx = await factory();
      broker = fx.broker;
      results = fx.results ?? broker.results!;
    });
    afterAll(async () => fx?.close());

    const fetchAll = (queue: string, max = 100, waitMs = 0, leaseMs = LONG_LEASE) => broker.fetch({ queues: [queue], max, leaseMs, waitMs });

    it('delivers a published message once, with its envelope intact', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q, { payload: { hello: 'world', list: [1, 2] } });
      expect(await broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: false }]);
      const [d, ...rest] = await fetchAll(q, 10, 2_000);
      expect(rest).toEqual([]);
      expect(d!.message).toEqual(msg);
      expect(typeof d!.token).toBe('string');
      expect(await fetchAll(q)).toEqual([]);
      await d!.ack();
    });

    it('orders by priority, then by time within a priority', async () => {
      const q = uniqueQueue();
      const msgs = [0, 5, 9, 5, 0, 9].map((priority, i) => makeMessage(q, { priority, payload: { i } }));
      for (const m of msgs) await broker.publish([m], KEY_TTL);
      const got = await collect(broker, q, msgs.length);
      expect(got.map((d) => d.message.payload)).toEqual([{ i: 2 }, { i: 5 }, { i: 1 }, { i: 3 }, { i: 0 }, { i: 4 }]);
      await Promise.all(got.map((d) => d.ack()));
    });

    it('puts a delayed message that came due ahead of one published after that', async () => {
      const q = uniqueQueue();
      const delayed = makeMessage(q, { eta: Date.now() + 100, payload: { which: 'delayed' } });
      await broker.publish([delayed], KEY_TTL);
      await sleep(400);
      await broker.publish([makeMessage(q, { payload: { which: 'fresh' } })], KEY_TTL);
      const got = await collect(broker, q, 2);
      expect(got.map((d) => d.message.payload)).toEqual([{ which: 'delayed' }, { which: 'fresh' }]);
      await Promise.all(got.map((d) => d.ack()));
    });

    it('serves every queue of a fetch, however busy the first one is', async () => {
      const [a, b] = [uniqueQueue(), uniqueQueue()];
      await broker.publish(Array.from({ length: 40 }, () => makeMessage(a)), KEY_TTL);
      await broker.publish([makeMessage(b, { payload: { from: 'b' } })], KEY_TTL);
      const seen = new Set<string>();
      for (let i = 0; i < 6 && !seen.has(b); i++) {
        const got = await broker.fetch({ queues: [a, b], max: 4, leaseMs: LONG_LEASE, waitMs: 1_000 });
        for (const d of got) seen.add(d.message.queue);
        await Promise.all(got.map((d) => d.ack()));
      }
      expect(seen.has(b)).toBe(true);
    });

    it('returns at most `max` per fetch and publishes many in one call', async () => {
      const q = uniqueQueue();
      const msgs = Array.from({ length: 25 }, (_, i) => makeMessage(q, { payload: { i } }));
      const published = await broker.publish(msgs, KEY_TTL);
      expect(published.map((p) => p.id)).toEqual(msgs.map((m) => m.id));
      const first = await fetchAll(q, 10, 2_000);
      expect(first.length).toBeGreaterThan(0);
      expect(first.length).toBeLessThanOrEqual(10);
      const rest = await collect(broker, q, 25 - first.length);
      expect(new Set([...first, ...rest].map((d) => d.message.id)).size).toBe(25);
      await Promise.all([...first, ...rest].map((d) => d.ack()));
    });

    it('holds a delayed message until its eta, reporting it as scheduled', async () => {
      const q = uniqueQueue();
      const eta = Date.now() + 400;
      const msg = makeMessage(q, { eta });
      await broker.publish([msg], KEY_TTL);
      if (broker.capabilities.taskStates) expect(await broker.state(msg)).toBe('scheduled');
      // Whichever fetch hands it out, its eta has passed by then. (Not "the first fetch gets
      // nothing": on a loaded machine the publish and state round trips can outlast the delay.)
      const early = await fetchAll(q, 10, 0);
      const [d] = early.length > 0 ? early : await fetchAll(q, 10, 5_000);
      expect(d?.message.id).toBe(msg.id);
      expect(Date.now()).toBeGreaterThanOrEqual(eta);
      await d!.ack();
    });

    it('blocks an idle fetch and wakes it when a message arrives', async () => {
      const q = uniqueQueue();
      const started = Date.now();
      const pending = fetchAll(q, 10, 10_000);
      await sleep(100);
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const [d] = await pending;
      expect(d?.message.id).toBe(msg.id);
      expect(Date.now() - started).toBeLessThan(10_000);
      await d!.ack();
    });

    it('returns promptly with nothing when the fetch is aborted', async () => {
      const q = uniqueQueue();
      const ac = new AbortController();
      const pending = broker.fetch({ queues: [q], max: 1, leaseMs: LONG_LEASE, waitMs: 10_000, signal: ac.signal });
      await sleep(50);
      const abortedAt = Date.now();
      ac.abort();
      expect(await pending).toEqual([]);
      expect(Date.now() - abortedAt).toBeLessThan(2_000);
    });

    it('redelivers after the lease lapses with a new token, and fences the old owner out', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      // Long enough for the two checks below to run inside it on a loaded machine (a round trip
      // can take a few hundred ms there), short enough to lapse soon after.
      const lease = shortLease * 4;
      const [first] = await fetchAll(q, 1, 2_000, lease);
      expect(first).toBeDefined();
      if (broker.capabilities.taskStates) expect(await broker.state(msg)).toBe('active');
      expect(await fetchAll(q, 1, 0)).toEqual([]);
      const [second] = await fetchAll(q, 1, lease + shortLease * 8, LONG_LEASE);
      expect(second?.message.id).toBe(msg.id);
      expect(second!.token).not.toBe(first!.token);
      const stale = { record: resultFor(msg, 'succeeded', { value: 'stale' }), ttlMs: 60_000, keyTtlMs: 60_000 };
      await expect(first!.ack(broker.results === results ? stale : undefined)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(first!.retry(nextAttempt(first!.message, 1, { name: 'Error', message: 'late' }, Date.now()), Date.now())).rejects.toBeInstanceOf(LeaseLostError);
      await expect(first!.deadLetter('late')).rejects.toBeInstanceOf(LeaseLostError);
      await expect(first!.release()).rejects.toBeInstanceOf(LeaseLostError);
      expect(await results.get(msg)).toBeNull();
      expect(await broker.deadLetters(q)).toEqual([]);
      expect(await broker.renew([first!, second!], LONG_LEASE)).toEqual([false, true]);
      await second!.ack();
      await expect(second!.ack()).rejects.toBeInstanceOf(LeaseLostError);
      expect(await broker.renew([second!], LONG_LEASE)).toEqual([false]);
    });

    it('does not redeliver while the lease is renewed', async () => {
      const q = uniqueQueue();
      await broker.publish([makeMessage(q)], KEY_TTL);
      // Renewed every shortLease, a lease of 4 × shortLease leaves each renewal 3 × shortLease of
      // slack for a late timer or a slow round trip on a loaded machine (shortLease / 2 of slack
      // made a renewal come after the lapse there). Six renewals carry it well past its first end.
      const lease = shortLease * 4;
      const [d] = await fetchAll(q, 1, 2_000, lease);
      for (let i = 0; i < 6; i++) {
        await sleep(shortLease);
        expect(await broker.renew([d!], lease)).toEqual([true]);
      }
      expect(await fetchAll(q, 1, 0)).toEqual([]);
      await d!.ack();
    });

    it('stores a settlement atomically with the ack and wakes waiters', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const waiting = results.wait(msg, { timeoutMs: 10_000 });
      const [d] = await fetchAll(q, 1, 2_000);
      const record = resultFor(msg, 'succeeded', { value: { sum: 3 } });
      await settleWith(broker, results, d!, record);
      expect(await waiting).toMatchObject({ id: msg.id, state: 'succeeded', value: { sum: 3 } });
      expect(await results.get(msg)).toMatchObject({ state: 'succeeded', value: { sum: 3 } });
      expect(await results.wait({ id: 'missing', queue: q }, { timeoutMs: 50 })).toBeNull();
      const startedAt = Date.now();
      expect(await results.wait(msg, { timeoutMs: 60_000 })).toMatchObject({ state: 'succeeded' });
      const ac = new AbortController();
      const aborted = results.wait({ id: 'missing', queue: q }, { timeoutMs: 60_000, signal: ac.signal });
      ac.abort();
      expect(await aborted).toBeNull();
      expect(Date.now() - startedAt).toBeLessThan(5_000);
    });

    it('retries at a later time with the next attempt and the last error', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const [d] = await fetchAll(q, 1, 2_000);
      const at = Date.now() + 300;
      await d!.retry(nextAttempt(d!.message, 1, { name: 'Error', message: 'boom' }, at), at);
      if (broker.capabilities.taskStates) expect(await broker.state(msg)).toBe('retrying');
      // Whichever fetch hands it out, `at` has passed by then (the round trips above may outlast the delay).
      const early = await fetchAll(q, 1, 0);
      const [again] = early.length > 0 ? early : await fetchAll(q, 1, 5_000);
      expect(Date.now()).toBeGreaterThanOrEqual(at);
      expect(again!.message).toMatchObject({ id: msg.id, attempt: 2, lastError: { message: 'boom' } });
      await again!.ack();
    });

    it('releases a message back unchanged', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const [d] = await fetchAll(q, 1, 2_000);
      await d!.release();
      const [again] = await fetchAll(q, 1, 2_000);
      expect(again!.message).toEqual(msg);
      await again!.ack();
    });

    it('dead-letters with the reason and counts it', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await broker.publish([msg], KEY_TTL);
      const [d] = await fetchAll(q, 1, 2_000);
      const record = resultFor(msg, 'failed', { error: { name: 'Error', message: 'nope' } });
      if (broker.results === results) await d!.deadLetter('failed after 3 attempt(s): nope', { record, ttlMs: 60_000, keyTtlMs: 60_000 });
      else {
        await results.store({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
        await d!.deadLetter('failed after 3 attempt(s): nope');
      }
      const dead = await broker.deadLetters(q);
      expect(dead).toHaveLength(1);
      expect(dead[0]!.reason).toContain('nope');
      expect(JSON.parse(dead[0]!.raw)).toMatchObject({ id: msg.id });
      expect((await broker.stats(q)).dead).toBe(1);
      expect(await results.get(msg)).toMatchObject({ state: 'failed' });
    });

    it('dead-letters malformed messages off the wire with the reason, and keeps going', async () => {
      const q = uniqueQueue();
      await fx.injectRaw(q, 'this is not json');
      await fx.injectRaw(q, JSON.stringify({ v: 1, id: 'x', task: 'has spaces', queue: q }));
      const good = makeMessage(q);
      await broker.publish([good], KEY_TTL);
      const got = await collect(broker, q, 1);
      expect(got.map((d) => d.message.id)).toEqual([good.id]);
      const dead = await broker.deadLetters(q);
      expect(dead.map((x) => x.raw).sort()).toEqual([JSON.stringify({ v: 1, id: 'x', task: 'has spaces', queue: q }), 'this is not json'].sort());
      for (const x of dead) expect(x.reason).toMatch(/malformed message/);
      await got[0]!.ack();
    });

    it('deduplicates publishes by task id and by idempotency key', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      expect(await broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: false }]);
      expect(await broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: true }]);
      const a = makeMessage(q, { idempotencyKey: 'order-42' });
      const b = makeMessage(q, { idempotencyKey: 'order-42' });
      const other = makeMessage(uniqueQueue(), { idempotencyKey: 'order-42' });
      expect(await broker.publish([a, b], KEY_TTL)).toEqual([{ id: a.id, duplicate: false }, { id: a.id, duplicate: true }]);
      expect(await broker.publish([other], KEY_TTL)).toEqual([{ id: other.id, duplicate: false }]);
      const got = await collect(broker, q, 2);
      expect(got.map((d) => d.message.id).sort()).toEqual([msg.id, a.id].sort());
      expect(await fetchAll(q, 10, 200)).toEqual([]);
      await Promise.all(got.map((d) => d.ack()));
      await broker.fetch({ queues: [other.queue], max: 1, leaseMs: LONG_LEASE, waitMs: 2_000 }).then((ds) => Promise.all(ds.map((d) => d.ack())));
    });

    it('claims idempotency keys as leases: acquired, busy for others, done after a stored success', async () => {
      const q = uniqueQueue();
      const ref = { queue: q, key: 'k-1' };
      expect(await results.claimKey(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimKey(ref, 'owner-a', 5_000)).toEqual({ status: 'acquired' });
      expect(await results.claimKey(ref, 'owner-b', 5_000)).toEqual({ status: 'busy' });
      await results.releaseKey(ref, 'owner-a');
      expect(await results.claimKey(ref, 'owner-b', shortLease)).toEqual({ status: 'acquired' });
      await sleep(shortLease * 2);
      expect(await results.claimKey(ref, 'owner-c', 5_000)).toEqual({ status: 'acquired' });
      const record = resultFor(makeMessage(q, { idempotencyKey: 'k-1' }), 'succeeded', { value: 7 });
      await results.store({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
      expect(await results.claimKey(ref, 'owner-d', 5_000)).toMatchObject({ status: 'done', record: { value: 7 } });
      const failedRef = { queue: q, key: 'k-2' };
      expect(await results.claimKey(failedRef, 'owner-a', 60_000)).toEqual({ status: 'acquired' });
      const failed = resultFor(makeMessage(q, { idempotencyKey: 'k-2' }), 'failed', { error: { name: 'Error', message: 'no' } });
      await results.store({ record: failed, ttlMs: 60_000, keyTtlMs: 60_000 });
      expect(await results.claimKey(failedRef, 'owner-b', 5_000)).toEqual({ status: 'acquired' });
      const later = { ...record, state: 'failed' as const, value: undefined, error: { name: 'Error', message: 'late' } };
      await results.store({ record: later, ttlMs: 60_000, keyTtlMs: 60_000 });
      expect(await results.get(record)).toMatchObject({ state: 'succeeded', value: 7 });
    });

    it('keeps marks as an atomic maximum (stores without durable marks declare none)', async () => {
      const marks = results.marks;
      // Optional capability: without it the scheduler skips missed ticks after a restart.
      if (!marks) return expect(Object.keys(results)).not.toContain('marks');
      const name = `mark-${uniqueQueue()}`;
      expect(await marks.getMark(name)).toBeNull();
      expect(await marks.advanceMark(name, 100)).toBe(100);
      expect(await marks.advanceMark(name, 50)).toBe(100);
      const raced = await Promise.all([300, 200, 250].map((at) => marks.advanceMark(name, at)));
      expect(Math.max(...raced)).toBe(300);
      expect(await marks.getMark(name)).toBe(300);
    });

    it('refuses queue names that could escape their keys or names', async () => {
      for (const bad of ['a}{b', 'a b', 'x:y']) {
        await expect(broker.stats(bad)).rejects.toMatchObject({ code: 'INVALID_NAME' });
        await expect(broker.publish([makeMessage(bad)], KEY_TTL)).rejects.toMatchObject({ name: 'ValidationError' });
      }
    });

    it('reports queue stats', async () => {
      const q = uniqueQueue();
      await broker.publish([makeMessage(q), makeMessage(q), makeMessage(q, { eta: Date.now() + 60_000 })], KEY_TTL);
      expect(await broker.stats(q)).toMatchObject({ queue: q, ready: 2, delayed: 1, inFlight: 0, dead: 0 });
      const [d] = await fetchAll(q, 1, 2_000);
      expect(await broker.stats(q)).toMatchObject({ ready: 1, delayed: 1, inFlight: 1 });
      await d!.ack();
      expect(await broker.stats(q)).toMatchObject({ ready: 1, inFlight: 0, completed: 1 });
    });

    // Optional methods: their rules are registered only where the broker has them (not counted as skipped).
    if (await offersPeek(factory)) describePeekRules(factory);
  });
}

/** Fetches until `n` deliveries arrived (blocking fetches, bounded). */
export async function collect(broker: Broker, queue: string, n: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + 10_000;
  while (out.length < n && Date.now() < deadline) {
    out.push(...(await broker.fetch({ queues: [queue], max: n - out.length, leaseMs: LONG_LEASE, waitMs: 1_000 })));
  }
  return out;
}

function resultFor(msg: { id: string; queue: string; task: string; idempotencyKey: string | null }, state: TaskResult['state'], extra: Partial<TaskResult>): TaskResult {
  return { id: msg.id, queue: msg.queue, task: msg.task, state, attempts: 1, finishedAt: Date.now(), idempotencyKey: msg.idempotencyKey, ...extra };
}

async function settleWith(broker: Broker, results: ResultBackend, d: Delivery, record: TaskResult): Promise<void> {
  const settlement = { record, ttlMs: 60_000, keyTtlMs: 60_000 };
  if (broker.results === results) return d.ack(settlement);
  await results.store(settlement);
  await d.ack();
}
