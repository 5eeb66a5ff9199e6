import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker, Delivery } from '../broker.js';
import type { TaskMessage } from '../envelope.js';
import type { ResultBackend, TaskResult } from '../results.js';
import { collect } from './broker-suite.js';
import type { BrokerFactory, BrokerFixture } from './fixture.js';
import { makeMessage, uniqueQueue } from './messages.js';

const KEY_TTL = { keyTtlMs: 60_000 };
const LONG_LEASE = 30_000;

/** Broker rules 8-10: dead letters by id, redrive, discard and purge (see `Broker` in broker.ts). */
export function describeDeadLetterRules(name: string, factory: BrokerFactory): void {
  describe(`${name}: dead letters by id, redrive, discard, purge`, () => {
    let fx: BrokerFixture;
    let broker: Broker;
    let results: ResultBackend;
    beforeAll(async () => {
      fx = await factory();
      broker = fx.broker;
      results = fx.results ?? broker.results!;
    });
    afterAll(async () => fx?.close());

    /** Publishes, fetches and dead-letters each message with reason `dead: <id>` (a failed result stored where `withResult`). */
    async function bury(messages: TaskMessage[], withResult = false): Promise<void> {
      await broker.publish(messages, KEY_TTL);
      const got = await collect(broker, messages[0]!.queue, messages.length);
      expect(got.map((d) => d.message.id).sort()).toEqual(messages.map((m) => m.id).sort());
      for (const d of got) await deadLetter(d, withResult);
    }

    async function deadLetter(d: Delivery, withResult: boolean): Promise<void> {
      const reason = `dead: ${d.message.id}`;
      if (!withResult) return d.deadLetter(reason);
      const settlement = { record: failedResult(d.message, reason), ttlMs: 60_000, keyTtlMs: 60_000 };
      if (broker.results === results) return d.deadLetter(reason, settlement);
      await results.store(settlement);
      await d.deadLetter(reason);
    }

    const deadIds = async (q: string) => (await broker.deadLetters(q)).map((d) => d.id).sort();

    it('lists each dead letter with an id: the task id, or one of its own for an unparseable letter', async () => {
      const q = uniqueQueue();
      const msg = makeMessage(q);
      await bury([msg]);
      await fx.injectRaw(q, 'not json at all');
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 500 })).toEqual([]);
      const dead = await broker.deadLetters(q);
      expect(dead).toHaveLength(2);
      const parsed = dead.find((d) => d.raw !== 'not json at all')!;
      const broken = dead.find((d) => d.raw === 'not json at all')!;
      expect(parsed.id).toBe(msg.id);
      expect(typeof broken.id).toBe('string');
      expect(broken.id).not.toBe('');
      expect(broken.id).not.toBe(msg.id);
      // Stable while the letter is kept: listing again names it the same.
      expect((await broker.deadLetters(q)).find((d) => d.raw === 'not json at all')!.id).toBe(broken.id);
    });

    it('redrives the chosen ids as fresh messages (attempt 1, same id, the reason as lastError), then all the rest', async () => {
      const q = uniqueQueue();
      // An expiry that has passed by the redrive: a redriven task has none (the operator runs it now).
      const [a, b, c] = [0, 1, 2].map((i) => makeMessage(q, { attempt: 3, payload: { i }, expiresAt: Date.now() + 60_000 }));
      await bury([a!, b!, c!]);
      const chosen = await broker.redrive(q, { ids: [a!.id, c!.id] });
      expect(chosen.redriven.sort()).toEqual([a!.id, c!.id].sort());
      expect(chosen.refused).toEqual([]);
      expect(await deadIds(q)).toEqual([b!.id]);
      const again = await collect(broker, q, 2);
      expect(again.map((d) => d.message.id).sort()).toEqual([a!.id, c!.id].sort());
      for (const d of again) {
        expect(d.message).toMatchObject({ attempt: 1, eta: null, expiresAt: null, payload: d.message.id === a!.id ? { i: 0 } : { i: 2 } });
        expect(d.message.lastError?.message).toBe(`dead: ${d.message.id}`);
        await d.ack();
      }
      const rest = await broker.redrive(q);
      expect(rest).toEqual({ redriven: [b!.id], refused: [] });
      expect(await broker.deadLetters(q)).toEqual([]);
      const [last, ...none] = await collect(broker, q, 1);
      expect(none).toEqual([]);
      expect(last!.message).toMatchObject({ id: b!.id, attempt: 1, lastError: { message: `dead: ${b!.id}` } });
      await last!.ack();
      expect((await broker.stats(q)).dead).toBe(0);
    });

    it('delivers a redriven id that was seen before, removing its stored failed result', async () => {
      const q = uniqueQueue();
      const withResult = makeMessage(q, { payload: { which: 'result' } });
      const withoutResult = makeMessage(q, { payload: { which: 'none' } });
      await bury([withResult], true);
      await bury([withoutResult], false);
      expect(await results.get(withResult)).toMatchObject({ state: 'failed' });
      // Its stored result makes the id known: a plain publish creates nothing.
      expect(await broker.publish([withResult], KEY_TTL)).toEqual([{ id: withResult.id, duplicate: true }]);
      const out = await broker.redrive(q, { ids: [withResult.id, withoutResult.id] });
      expect(out.redriven.sort()).toEqual([withResult.id, withoutResult.id].sort());
      if (broker.results === results) expect(await results.get(withResult)).toBeNull();
      const got = await collect(broker, q, 2);
      expect(got.map((d) => d.message.id).sort()).toEqual([withResult.id, withoutResult.id].sort());
      for (const d of got) {
        const record = { id: d.message.id, queue: q, task: d.message.task, state: 'succeeded' as const, attempts: 1, finishedAt: Date.now(), idempotencyKey: null, value: 'second run' };
        if (broker.results === results) await d.ack({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
        else await d.ack();
      }
      if (broker.results === results) expect(await results.get(withResult)).toMatchObject({ state: 'succeeded', value: 'second run' });
    });

    it('refuses an unparseable letter with the parse error, keeping it, and an unknown id as not found', async () => {
      const q = uniqueQueue();
      await fx.injectRaw(q, 'this is not json');
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 500 })).toEqual([]);
      const [broken] = await broker.deadLetters(q);
      expect(broken).toBeDefined();
      const named = await broker.redrive(q, { ids: [broken!.id, 'no-such-letter'] });
      expect(named.redriven).toEqual([]);
      expect(named.refused).toEqual([
        { id: broken!.id, reason: expect.stringMatching(/malformed message/) },
        { id: 'no-such-letter', reason: 'not found' },
      ]);
      const all = await broker.redrive(q);
      expect(all).toEqual({ redriven: [], refused: [{ id: broken!.id, reason: expect.stringMatching(/malformed message/) }] });
      expect(await deadIds(q)).toEqual([broken!.id]);
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 200 })).toEqual([]);
    });

    it('discards the named dead letters for good, ignoring unknown ids', async () => {
      const q = uniqueQueue();
      const [a, b] = [makeMessage(q), makeMessage(q)];
      await bury([a!, b!]);
      expect(await broker.discard(q, { ids: [a!.id, 'no-such-letter'] })).toBe(1);
      expect(await deadIds(q)).toEqual([b!.id]);
      expect(await broker.discard(q, { ids: [a!.id] })).toBe(0);
      expect((await broker.redrive(q, { ids: [a!.id] })).refused).toEqual([{ id: a!.id, reason: 'not found' }]);
      expect((await broker.stats(q)).dead).toBe(1);
    });

    it('purges ready and delayed messages but not a leased one, which still acks; purged ids and keys publish again', async () => {
      const q = uniqueQueue();
      const leased = makeMessage(q, { payload: { which: 'leased' } });
      await broker.publish([leased], KEY_TTL);
      const [held] = await collect(broker, q, 1);
      expect(held!.message.id).toBe(leased.id);
      const ready = [makeMessage(q), makeMessage(q, { idempotencyKey: 'purged-key' }), makeMessage(q, { priority: 5 })];
      const delayed = makeMessage(q, { eta: Date.now() + 60_000 });
      await broker.publish([...ready, delayed], KEY_TTL);
      expect(await broker.purge(q)).toBe(4);
      expect(await broker.stats(q)).toMatchObject({ ready: 0, delayed: 0, inFlight: 1 });
      expect(await broker.fetch({ queues: [q], max: 10, leaseMs: LONG_LEASE, waitMs: 300 })).toEqual([]);
      await held!.ack();
      expect(await broker.purge(q)).toBe(0);
      // Nor does the key of a purged task make a new task with that key a "duplicate" of one that never runs.
      const keyed = makeMessage(q, { idempotencyKey: 'purged-key' });
      expect(await broker.publish([ready[0]!, keyed], KEY_TTL)).toEqual([
        { id: ready[0]!.id, duplicate: false },
        { id: keyed.id, duplicate: false },
      ]);
      const back = await collect(broker, q, 2);
      expect(back.map((d) => d.message.id).sort()).toEqual([ready[0]!.id, keyed.id].sort());
      for (const d of back) await d.ack();
    });
  });
}

function failedResult(msg: TaskMessage, message: string): TaskResult {
  return { id: msg.id, queue: msg.queue, task: msg.task, state: 'failed', attempts: msg.attempt, finishedAt: Date.now(), idempotencyKey: msg.idempotencyKey, error: { name: 'Error', message } };
}
