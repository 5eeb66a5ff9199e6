import {
  assertKind,
  assertScope,
  assertSemaphoreName,
  assertSemaphoreOptions,
  encodeRecord,
  listLimit,
  type Coordination,
  type Hold,
  type ListOptions,
  type RecordRef,
  type SemaphoreRef,
  type StoredRecord,
} from '../coordination.js';

interface Entry {
  json: string;
  /** Epoch ms, or Infinity for a record without a TTL. */
  expiresAt: number;
}

const SWEEP_EVERY = 1_000;

/**
 * The coordination primitives in this process (`memory://`), by the rules of `Coordination`.
 * Expired records and lapsed holders are dropped when read, and in a sweep every 1,000 writes.
 */
export class MemoryCoordination implements Coordination {
  /** scope \0 kind → id → entry */
  readonly #records = new Map<string, Map<string, Entry>>();
  /** scope \0 name → holder → lease end */
  readonly #semaphores = new Map<string, Map<string, number>>();
  readonly #versions = new Map<string, number>();
  #writes = 0;

  async putRecord(ref: RecordRef, value: unknown, ttlMs: number | null): Promise<void> {
    const json = encodeRecord(ref, value);
    const kind = this.#kind(ref.scope, ref.kind, true)!;
    kind.set(ref.id, { json, expiresAt: ttlMs === null ? Infinity : Date.now() + ttlMs });
    if (++this.#writes % SWEEP_EVERY === 0) this.#sweep();
  }

  async getRecords(scope: string, kind: string, ids: readonly string[]): Promise<unknown[]> {
    const now = Date.now();
    const records = this.#kind(scope, kind, false);
    return ids.map((id) => {
      const entry = records?.get(id);
      return entry && entry.expiresAt > now ? JSON.parse(entry.json) : null;
    });
  }

  async listRecords(scope: string, kind: string, options?: ListOptions): Promise<StoredRecord[]> {
    const limit = listLimit(options);
    const records = this.#kind(scope, kind, false);
    if (!records) return [];
    const now = Date.now();
    const live: [string, Entry][] = [];
    for (const [id, entry] of records) {
      if (entry.expiresAt > now) live.push([id, entry]);
      else records.delete(id);
    }
    live.sort((a, b) => (options?.latestFirst ? b[1].expiresAt - a[1].expiresAt : a[1].expiresAt - b[1].expiresAt));
    return live.slice(0, limit).map(([id, entry]) => ({ id, value: JSON.parse(entry.json) }));
  }

  async deleteRecord(ref: RecordRef): Promise<boolean> {
    const records = this.#kind(ref.scope, ref.kind, false);
    const entry = records?.get(ref.id);
    records?.delete(ref.id);
    return entry !== undefined && entry.expiresAt > Date.now();
  }

  async acquire(ref: SemaphoreRef, holder: string, options: { limit: number; leaseMs: number }): Promise<boolean> {
    assertSemaphoreOptions(options);
    assertSemaphoreName(ref.name);
    return this.acquireNow(ref, holder, options.limit, options.leaseMs);
  }

  /** `acquire`, synchronously: the memory result store takes idempotency key claims with it. */
  acquireNow(ref: SemaphoreRef, holder: string, limit: number, leaseMs: number): boolean {
    const now = Date.now();
    const holders = this.#holders(ref, true)!;
    for (const [h, until] of holders) if (until <= now) holders.delete(h);
    if (!holders.has(holder) && holders.size >= limit) return false;
    holders.set(holder, now + leaseMs);
    return true;
  }

  /** Frees every place of a semaphore (a stored outcome ends any claim on its key). */
  clearNow(ref: SemaphoreRef): void {
    this.#semaphores.delete(semaphoreKey(ref));
  }

  async renew(holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    const now = Date.now();
    return holds.map(({ ref, holder }) => {
      assertSemaphoreName(ref.name);
      const holders = this.#holders(ref, false);
      const until = holders?.get(holder);
      if (until === undefined || until <= now) return false;
      holders!.set(holder, now + leaseMs);
      return true;
    });
  }

  async release(ref: SemaphoreRef, holder: string): Promise<void> {
    assertSemaphoreName(ref.name);
    this.releaseNow(ref, holder);
  }

  releaseNow(ref: SemaphoreRef, holder: string): void {
    const holders = this.#holders(ref, false);
    holders?.delete(holder);
    if (holders?.size === 0) this.#semaphores.delete(semaphoreKey(ref)); // released claims leave nothing behind
  }

  async bumpVersion(scope: string): Promise<number> {
    const version = (this.#versions.get(assertScope(scope)) ?? 0) + 1;
    this.#versions.set(scope, version);
    return version;
  }

  async version(scope: string): Promise<number> {
    return this.#versions.get(assertScope(scope)) ?? 0;
  }

  #kind(scope: string, kind: string, create: boolean): Map<string, Entry> | undefined {
    const key = `${assertScope(scope)}\u0000${assertKind(kind)}`;
    let records = this.#records.get(key);
    if (!records && create) this.#records.set(key, (records = new Map()));
    return records;
  }

  #holders(ref: SemaphoreRef, create: boolean): Map<string, number> | undefined {
    const key = semaphoreKey(ref);
    let holders = this.#semaphores.get(key);
    if (!holders && create) this.#semaphores.set(key, (holders = new Map()));
    return holders;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, records] of this.#records) {
      for (const [id, entry] of records) if (entry.expiresAt <= now) records.delete(id);
      if (records.size === 0) this.#records.delete(key);
    }
    for (const [key, holders] of this.#semaphores) {
      for (const [h, until] of holders) if (until <= now) holders.delete(h);
      if (holders.size === 0) this.#semaphores.delete(key);
    }
  }
}

/** A semaphore's map key (names are checked by the public calls; key claims come from the store itself). */
const semaphoreKey = (ref: SemaphoreRef) => `${assertScope(ref.scope)}\u0000${ref.name}`;
