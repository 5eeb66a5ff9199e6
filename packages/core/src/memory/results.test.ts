import { describe, expect, it } from 'vitest';
import { MemoryResultBackend } from './results.js';

describe('MemoryResultBackend', () => {
  // Defect 10 (issue 8): each timed-out or aborted wait left an empty Set behind (+49.8 MB after 200k waits).
  it('keeps no entry behind for waits that timed out or were aborted', async () => {
    const store = new MemoryResultBackend();
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.wait({ id: `t-${i}`, queue: 'q' }, { timeoutMs: 1 })));
    const ac = new AbortController();
    const aborted = Array.from({ length: 500 }, (_, i) => store.wait({ id: `a-${i}`, queue: 'q' }, { timeoutMs: 60_000, signal: ac.signal }));
    expect(store.waitingIds()).toBe(500);
    ac.abort();
    expect(await Promise.all(aborted)).toEqual(Array.from({ length: 500 }, () => null));
    expect(store.waitingIds()).toBe(0);
  });

  it('keeps the entry while another wait on the same id is still pending', async () => {
    const store = new MemoryResultBackend();
    const ref = { id: 'shared', queue: 'q' };
    const short = store.wait(ref, { timeoutMs: 1 });
    const long = store.wait(ref, { timeoutMs: 60_000 });
    expect(await short).toBeNull();
    expect(store.waitingIds()).toBe(1);
    const record = { id: 'shared', queue: 'q', task: 't', state: 'succeeded' as const, value: 1, attempts: 1, finishedAt: Date.now(), idempotencyKey: null };
    await store.store({ record, ttlMs: 60_000, keyTtlMs: 60_000 });
    expect(await long).toMatchObject({ value: 1 });
    expect(store.waitingIds()).toBe(0);
  });
});
