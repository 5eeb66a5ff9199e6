import type { TaskMessage } from '@celeriac/core';

/**
 * Publish deduplication, within one process: task ids recently published here, and idempotency
 * keys (scoped by queue) → the first task id, for `keyTtlMs`. Both tables are bounded (oldest
 * first out). AMQP has no place to look a message up, so a duplicate published by *another*
 * process is not caught here; the worker side catches it instead (idempotency claim and stored
 * success in the result store — shared across processes with a Redis result store).
 */
export class Dedup {
  readonly #ids = new Map<string, number>();
  readonly #keys = new Map<string, { id: string; until: number }>();

  constructor(private readonly cap: number) {}

  /** Records `m` as published and returns null, or returns the id of the task it duplicates. */
  claim(m: TaskMessage, keyTtlMs: number): string | null {
    const now = Date.now();
    const idKey = `${m.queue}\u0000${m.id}`;
    const seen = this.#ids.get(idKey);
    if (seen !== undefined && seen > now) return m.id;
    if (m.idempotencyKey !== null) {
      const key = `${m.queue}\u0000${m.idempotencyKey}`;
      const owner = this.#keys.get(key);
      if (owner && owner.until > now) return owner.id;
      this.#put(this.#keys, key, { id: m.id, until: now + keyTtlMs });
    }
    this.#put(this.#ids, idKey, now + keyTtlMs);
    return null;
  }

  /** Undoes `claim` for a message whose publish failed. */
  forget(m: TaskMessage): void {
    this.#ids.delete(`${m.queue}\u0000${m.id}`);
    if (m.idempotencyKey === null) return;
    const key = `${m.queue}\u0000${m.idempotencyKey}`;
    if (this.#keys.get(key)?.id === m.id) this.#keys.delete(key);
  }

  /** Forgets the ids and keys of `queue`'s messages except those of `keep` (a purge: its ids may come again). */
  forgetQueue(queue: string, keep: ReadonlySet<string>): void {
    const prefix = `${queue}\u0000`;
    for (const k of this.#ids.keys()) if (k.startsWith(prefix) && !keep.has(k.slice(prefix.length))) this.#ids.delete(k);
    for (const [k, owner] of this.#keys) if (k.startsWith(prefix) && !keep.has(owner.id)) this.#keys.delete(k);
  }

  #put<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > this.cap) map.delete(map.keys().next().value!);
  }
}
