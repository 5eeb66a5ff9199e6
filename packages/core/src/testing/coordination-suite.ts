import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GLOBAL_SCOPE, type Coordination, type SemaphoreRef } from '../coordination.js';
import { ValidationError } from '../errors.js';
import type { ResultBackend } from '../results.js';
import type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
import { sleep, uniqueQueue } from './messages.js';

/**
 * The coordination rules (see `Coordination` in coordination.ts). A store that shares nothing
 * (RabbitMQ's reply queues) is run with `coordination: false` and must say so: `coordination` is
 * null and `capabilities.shared` false.
 * Lease tests use leases of a few hundred ms and wait past them; the bounds are generous so a
 * loaded machine does not fail them.
 */
export function describeCoordinationRules(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  describe(`${name}: coordination store`, () => {
    let fx: BrokerFixture;
    let store: ResultBackend;
    beforeAll(async () => {
      fx = await factory();
      store = fx.results ?? fx.broker.results!;
    });
    afterAll(async () => fx?.close());

    if (options.coordination === false) {
      it('keeps no coordination state, and says so (control features then fail naming the fix)', () => {
        expect(store.coordination).toBeNull();
        expect(store.capabilities.shared).toBe(false);
      });
      return;
    }

    const co = (): Coordination => {
      expect(store.coordination, 'this store must implement Coordination (or the suite be told `coordination: false`)').not.toBeNull();
      return store.coordination!;
    };

    describe('records', () => {
      it('writes, reads back as JSON, lists and deletes records (rules 2, 3, 5)', async () => {
        const c = co();
        const scope = uniqueQueue('co');
        const value = { host: 'h1', n: 3, tags: ['a', 'b'], nested: { ok: true } };
        await c.putRecord({ scope, kind: 'workers', id: 'w1' }, value, 60_000);
        await c.putRecord({ scope, kind: 'workers', id: 'w2' }, 'plain', null);
        expect(await c.getRecords(scope, 'workers', ['w1', 'missing', 'w2'])).toEqual([value, null, 'plain']);
        await c.putRecord({ scope, kind: 'workers', id: 'w1' }, { replaced: 1 }, 60_000);
        expect(await c.getRecords(scope, 'workers', ['w1'])).toEqual([{ replaced: 1 }]);
        expect(await c.listRecords(scope, 'workers')).toEqual([
          { id: 'w1', value: { replaced: 1 } },
          { id: 'w2', value: 'plain' },
        ]);
        expect(await c.deleteRecord({ scope, kind: 'workers', id: 'w1' })).toBe(true);
        expect(await c.deleteRecord({ scope, kind: 'workers', id: 'w1' })).toBe(false);
        expect(await c.getRecords(scope, 'workers', ['w1', 'w2'])).toEqual([null, 'plain']);
        expect(await c.getRecords(scope, 'workers', [])).toEqual([]);
      });

      it('never returns an expired record; a kind, a scope and the global scope are apart', async () => {
        const c = co();
        const [scope, other] = [uniqueQueue('co'), uniqueQueue('co')];
        const kind = `k-${uniqueQueue('g')}`; // the global scope is shared by every test run
        await c.putRecord({ scope, kind: 'progress', id: 't1' }, 1, 300);
        await c.putRecord({ scope, kind: 'revoked', id: 't1' }, 2, 60_000);
        await c.putRecord({ scope: other, kind: 'progress', id: 't1' }, 3, 60_000);
        await c.putRecord({ scope: GLOBAL_SCOPE, kind, id: 't1' }, 4, 60_000);
        expect(await c.getRecords(scope, 'progress', ['t1'])).toEqual([1]);
        await sleep(700);
        expect(await c.getRecords(scope, 'progress', ['t1'])).toEqual([null]);
        expect(await c.listRecords(scope, 'progress')).toEqual([]);
        expect(await c.deleteRecord({ scope, kind: 'progress', id: 't1' })).toBe(false);
        expect(await c.getRecords(scope, 'revoked', ['t1'])).toEqual([2]);
        expect(await c.getRecords(other, 'progress', ['t1'])).toEqual([3]);
        expect(await c.listRecords(GLOBAL_SCOPE, kind)).toEqual([{ id: 't1', value: 4 }]);
        expect(await c.deleteRecord({ scope: GLOBAL_SCOPE, kind, id: 't1' })).toBe(true);
      });

      it('lists soonest to expire first, records without a TTL last, at most `limit` (rule 4)', async () => {
        const c = co();
        const scope = uniqueQueue('co');
        await c.putRecord({ scope, kind: 'q', id: 'forever' }, 0, null);
        await c.putRecord({ scope, kind: 'q', id: 'late' }, 0, 90_000);
        await c.putRecord({ scope, kind: 'q', id: 'soon' }, 0, 30_000);
        await c.putRecord({ scope, kind: 'q', id: 'middle' }, 0, 60_000);
        expect((await c.listRecords(scope, 'q')).map((r) => r.id)).toEqual(['soon', 'middle', 'late', 'forever']);
        expect((await c.listRecords(scope, 'q', { limit: 2 })).map((r) => r.id)).toEqual(['soon', 'middle']);
        expect((await c.listRecords(scope, 'q', { latestFirst: true })).map((r) => r.id)).toEqual(['forever', 'late', 'middle', 'soon']);
        expect((await c.listRecords(scope, 'q', { limit: 2, latestFirst: true })).map((r) => r.id)).toEqual(['forever', 'late']);
        await expect(c.listRecords(scope, 'q', { limit: 0 })).rejects.toThrow(ValidationError);
      });

      it('lists more records than one script call can unpack at once (8,000+)', async () => {
        const c = co();
        const scope = uniqueQueue('co');
        const ids = Array.from({ length: 8_100 }, (_, i) => `r-${i}`);
        for (let i = 0; i < ids.length; i += 1_000) await Promise.all(ids.slice(i, i + 1_000).map((id) => c.putRecord({ scope, kind: 'big', id }, 1, 60_000)));
        expect(await c.listRecords(scope, 'big', { limit: 10_000 })).toHaveLength(8_100);
        expect(await c.listRecords(scope, 'big', { limit: 10_000, latestFirst: true })).toHaveLength(8_100);
      }, 60_000);

      it('reads many ids in one call, in order', async () => {
        const c = co();
        const scope = uniqueQueue('co');
        await Promise.all([7, 1_234, 2_400].map((i) => c.putRecord({ scope, kind: 'many', id: `id-${i}` }, i, 60_000)));
        const ids = Array.from({ length: 2_500 }, (_, i) => `id-${i}`);
        const values = await c.getRecords(scope, 'many', ids);
        expect(values).toHaveLength(2_500);
        expect(values.flatMap((v, i) => (v === null ? [] : [[i, v]]))).toEqual([
          [7, 7],
          [1_234, 1_234],
          [2_400, 2_400],
        ]);
      });

      it('refuses a bad scope, kind or value with a ValidationError that names it, writing nothing', async () => {
        const c = co();
        const scope = uniqueQueue('co');
        await expect(c.putRecord({ scope: 'a}b', kind: 'k', id: '1' }, 1, null)).rejects.toThrow(/invalid store scope "a}b"/);
        await expect(c.putRecord({ scope, kind: 'a:b', id: '1' }, 1, null)).rejects.toThrow(/invalid record kind "a:b"/);
        await expect(c.putRecord({ scope, kind: 'k', id: '1' }, undefined, null)).rejects.toThrow(ValidationError);
        await expect(c.putRecord({ scope, kind: 'k', id: '1' }, { n: 1n }, null)).rejects.toThrow(/record k\/1 is not JSON/);
        await expect(c.acquire({ scope, name: '' }, 'h', { limit: 1, leaseMs: 1_000 })).rejects.toThrow(/invalid semaphore name/);
        await expect(c.acquire({ scope, name: 's' }, 'h', { limit: 0, leaseMs: 1_000 })).rejects.toThrow(/limit must be a positive integer/);
        expect(await c.listRecords(scope, 'k')).toEqual([]);
      });
    });

    describe('leased semaphores', () => {
      const sem = (): SemaphoreRef => ({ scope: uniqueQueue('sem'), name: 'limit:emails.send' });

      it('holds at most `limit` holders; a holder extends its own place; a release frees it at once (rules 6, 7)', async () => {
        const c = co();
        const ref = sem();
        const limit = { limit: 2, leaseMs: 60_000 };
        expect(await c.acquire(ref, 'a', limit)).toBe(true);
        expect(await c.acquire(ref, 'b', limit)).toBe(true);
        expect(await c.acquire(ref, 'c', limit)).toBe(false);
        expect(await c.acquire(ref, 'a', limit)).toBe(true); // its own place again
        await c.release(ref, 'c'); // not a holder: nothing changes
        expect(await c.acquire(ref, 'c', limit)).toBe(false);
        await c.release(ref, 'a');
        expect(await c.acquire(ref, 'c', limit)).toBe(true);
        expect(await c.acquire(ref, 'a', limit)).toBe(false);
        // Concurrent contenders for the last place: exactly one gets it.
        await c.release(ref, 'c');
        const raced = await Promise.all(['x', 'y', 'z', 'w'].map((h) => c.acquire(ref, h, limit)));
        expect(raced.filter(Boolean)).toHaveLength(1);
      });

      it('frees a place whose lease ran out; renew extends live holds only and never revives a lapsed one', async () => {
        const c = co();
        const [one, two] = [sem(), sem()];
        expect(await c.acquire(one, 'short', { limit: 1, leaseMs: 300 })).toBe(true);
        expect(await c.acquire(two, 'kept', { limit: 1, leaseMs: 300 })).toBe(true);
        expect(await c.acquire(one, 'other', { limit: 1, leaseMs: 60_000 })).toBe(false);
        // `kept` is renewed for a long lease before it lapses; `short` is left to lapse.
        expect(await c.renew([{ ref: two, holder: 'kept' }], 60_000)).toEqual([true]);
        await sleep(700);
        expect(await c.acquire(two, 'other', { limit: 1, leaseMs: 60_000 })).toBe(false); // still held
        expect(await c.renew([{ ref: one, holder: 'short' }, { ref: two, holder: 'kept' }, { ref: two, holder: 'never' }], 60_000)).toEqual([false, true, false]);
        expect(await c.acquire(one, 'other', { limit: 1, leaseMs: 60_000 })).toBe(true); // the lapsed place passed on
        expect(await c.renew([{ ref: one, holder: 'short' }], 60_000)).toEqual([false]);
        expect(await c.renew([], 60_000)).toEqual([]);
      });
    });

    describe('idempotency key claims', () => {
      it('are semaphores the store reserves (key:<key>): user semaphores cannot take their names', async () => {
        const c = co();
        const queue = uniqueQueue('kc');
        const ref = { queue, key: 'k'.repeat(512) }; // the longest key enqueue accepts
        expect(await store.claimKey(ref, 'delivery-a', 60_000)).toEqual({ status: 'acquired' });
        expect(await store.claimKey(ref, 'delivery-b', 60_000)).toEqual({ status: 'busy' });
        await store.releaseKey(ref, 'delivery-a');
        expect(await store.claimKey(ref, 'delivery-b', 60_000)).toEqual({ status: 'acquired' });
        expect(await store.claimKey({ queue, key: 'order-9' }, 'delivery-c', 60_000)).toEqual({ status: 'acquired' });
        const reserved = { scope: queue, name: 'key:order-9' };
        await expect(c.acquire(reserved, 'someone-else', { limit: 1, leaseMs: 60_000 })).rejects.toThrow(/are the idempotency key claims/);
        await expect(c.renew([{ ref: reserved, holder: 'delivery-c' }], 60_000)).rejects.toThrow(/are the idempotency key claims/);
      });
    });

    describe('versions', () => {
      it('start at 0, go up by one per bump, per scope (rule 8)', async () => {
        const c = co();
        const [scope, other] = [uniqueQueue('v'), uniqueQueue('v')];
        expect(await c.version(scope)).toBe(0);
        expect(await c.bumpVersion(scope)).toBe(1);
        expect(await c.bumpVersion(scope)).toBe(2);
        expect(await c.version(scope)).toBe(2);
        expect(await c.version(other)).toBe(0);
        const before = await c.version(GLOBAL_SCOPE);
        expect(await c.bumpVersion(GLOBAL_SCOPE)).toBeGreaterThan(before);
      });
    });
  });
}
