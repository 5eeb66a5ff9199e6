import { BackendError } from '../errors.js';
import { MemoryCoordination } from './coordination.js';
import type { SemaphoreRef } from '../coordination.js';
import type { KeyClaim, KeyRef, MarkStore, ResultBackend, Settlement, StoreOptions, TaskRef, TaskResult } from '../results.js';

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

interface KeyRecord {
  /** The first task published with the key. */
  taskId: string;
  record: TaskResult | null;
}

const SWEEP_EVERY = 1_000;

/**
 * The in-memory result store (`memory://`).
 * 1. Keeps final records by task id and idempotency records by key, each with its TTL.
 * 2. Wakes `wait()` callers the moment a record is stored (no polling).
 * 3. Serves as the dedup table for `MemoryBroker.publish` (key → first task id).
 */
export class MemoryResultBackend implements ResultBackend {
  readonly capabilities = { push: true, shared: false };
  readonly coordination = new MemoryCoordination();
  readonly #results = new Map<string, Expiring<TaskResult>>();
  readonly #keys = new Map<string, Expiring<KeyRecord>>();
  /** Task claims (`claimTask`): task key → owner, until its lease ends. */
  readonly #claims = new Map<string, Expiring<string>>();
  readonly #waiters = new Map<string, Set<(record: TaskResult | null, error?: Error) => void>>();
  #closed = false;
  #writes = 0;
  readonly #marks = new Map<string, number>();
  readonly marks: MarkStore = {
    getMark: async (name) => this.#marks.get(name) ?? null,
    advanceMark: async (name, at) => {
      const mark = Math.max(this.#marks.get(name) ?? -Infinity, at);
      this.#marks.set(name, mark);
      return mark;
    },
  };

  async store(settlement: Settlement, options: StoreOptions = {}): Promise<boolean> {
    if (options.owner !== undefined) {
      if (!this.holdsTask(settlement.record, options.owner)) return false;
      this.#claims.delete(taskKey(settlement.record));
    }
    this.storeNow(settlement);
    return true;
  }

  /** True while `owner` holds the task's claim (`claimTask`). */
  holdsTask(ref: TaskRef, owner: string): boolean {
    return live(this.#claims.get(taskKey(ref)), Date.now()) === owner;
  }

  /** Synchronous store, so the memory broker can make it atomic with an ack. */
  storeNow({ record, ttlMs, keyTtlMs }: Settlement): void {
    const now = Date.now();
    const id = taskKey(record);
    const existing = live(this.#results.get(id), now);
    if (existing?.state === 'succeeded') return;
    const copy = structuredClone(record);
    this.#results.set(id, { value: copy, expiresAt: now + ttlMs });
    if (record.idempotencyKey !== null) {
      const key = keyOf({ queue: record.queue, key: record.idempotencyKey });
      const current = live(this.#keys.get(key), now);
      const keep = current?.record?.state === 'succeeded' ? current.record : copy;
      this.#keys.set(key, { value: { taskId: current?.taskId ?? record.id, record: keep }, expiresAt: now + keyTtlMs });
      this.coordination.clearNow(keyClaim({ queue: record.queue, key: record.idempotencyKey })); // the outcome ends any claim
    }
    const waiters = this.#waiters.get(id);
    if (waiters) {
      this.#waiters.delete(id);
      for (const wake of waiters) wake(copy);
    }
    if (++this.#writes % SWEEP_EVERY === 0) this.#sweep(now);
  }

  /** Drops the final record of a task (a redriven dead letter runs again, and stores anew). */
  forgetNow(ref: TaskRef): void {
    this.#results.delete(taskKey(ref));
    this.#claims.delete(taskKey(ref));
  }

  async forget(refs: readonly TaskRef[]): Promise<void> {
    for (const ref of refs) this.forgetNow(ref);
  }

  async get(ref: TaskRef): Promise<TaskResult | null> {
    return this.getNow(ref);
  }

  getNow(ref: TaskRef): TaskResult | null {
    return live(this.#results.get(taskKey(ref)), Date.now()) ?? null;
  }

  wait(ref: TaskRef, { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal }): Promise<TaskResult | null> {
    const found = this.getNow(ref);
    if (found || signal?.aborted) return Promise.resolve(found);
    if (this.#closed) return Promise.reject(closedError());
    const id = taskKey(ref);
    return new Promise((resolve, reject) => {
      const done = (record: TaskResult | null, error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const set = this.#waiters.get(id);
        // The last waiter of an id takes its Set along: one empty Set per timed-out wait was a leak.
        if (set?.delete(done) && set.size === 0) this.#waiters.delete(id);
        if (error) reject(error);
        else resolve(record);
      };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(done);
    });
  }

  /** A semaphore of one holder (the coordination store's), unless a success is stored under the key. */
  async claimKey(ref: KeyRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    const current = live(this.#keys.get(keyOf(ref)), Date.now());
    if (current?.record?.state === 'succeeded') return { status: 'done', record: current.record };
    return this.coordination.acquireNow(keyClaim(ref), owner, 1, leaseMs) ? { status: 'acquired' } : { status: 'busy' };
  }

  async releaseKey(ref: KeyRef, owner: string): Promise<void> {
    this.coordination.releaseNow(keyClaim(ref), owner);
  }

  async claimTask(ref: TaskRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    const now = Date.now();
    const id = taskKey(ref);
    const record = this.getNow(ref);
    if (record) return { status: 'done', record };
    const holder = live(this.#claims.get(id), now);
    if (holder !== undefined && holder !== owner) return { status: 'busy' };
    this.#claims.set(id, { value: owner, expiresAt: now + leaseMs });
    return { status: 'acquired' };
  }

  async releaseTask(ref: TaskRef, owner: string): Promise<void> {
    if (this.holdsTask(ref, owner)) this.#claims.delete(taskKey(ref));
  }

  async reserveKey(ref: KeyRef, taskId: string, ttlMs: number): Promise<string> {
    return this.reserveKeyNow(ref, taskId, ttlMs);
  }

  /** Points `key` at `taskId` unless it already points at a live task; returns the owner's id. */
  reserveKeyNow(ref: KeyRef, taskId: string, ttlMs: number): string {
    const now = Date.now();
    const key = keyOf(ref);
    const current = live(this.#keys.get(key), now);
    if (current) return current.taskId;
    this.#keys.set(key, { value: { taskId, record: null }, expiresAt: now + ttlMs });
    return taskId;
  }

  async unreserveKey(ref: KeyRef, taskId: string): Promise<void> {
    this.unreserveKeyNow(ref, taskId);
  }

  /** Gives `key` back unless it points at another task or holds an outcome (synchronous, for the memory broker's purge). */
  unreserveKeyNow(ref: KeyRef, taskId: string): void {
    const key = keyOf(ref);
    const current = live(this.#keys.get(key), Date.now());
    if (!current || current.taskId !== taskId || current.record !== null) return;
    // A claim on the key (a delivery of another task id under it) lives in its semaphore: it stays.
    this.#keys.delete(key);
  }

  /** @internal How many task ids have a pending `wait()` (a test holds the waiter table to zero when idle). */
  waitingIds(): number {
    return this.#waiters.size;
  }

  /** Closing rejects pending and later waits (a `result()` must not wait forever on a closed store). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [id, waiters] of this.#waiters) {
      this.#waiters.delete(id);
      for (const wake of waiters) wake(null, closedError());
    }
  }

  #sweep(now: number): void {
    for (const map of [this.#results, this.#keys, this.#claims] as Map<string, Expiring<unknown>>[]) {
      for (const [k, v] of map) if (v.expiresAt <= now) map.delete(k);
    }
  }
}

function closedError(): Error {
  return new BackendError('the result store is closed: results can no longer be awaited through this app');
}

function live<T>(entry: Expiring<T> | undefined, now: number): T | undefined {
  return entry && entry.expiresAt > now ? entry.value : undefined;
}

const taskKey = (ref: TaskRef) => `${ref.queue}\u0000${ref.id}`;
const keyOf = (ref: KeyRef) => `${ref.queue}\u0000${ref.key}`;
/** An idempotency key's claim: a semaphore of one holder in the key's queue scope (as Redis keeps it). */
const keyClaim = (ref: KeyRef): SemaphoreRef => ({ scope: ref.queue, name: `key:${ref.key}` });
