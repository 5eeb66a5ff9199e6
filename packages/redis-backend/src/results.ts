import { BackendError, type KeyClaim, type KeyRef, type ResultBackend, type Settlement, type StoreOptions, type TaskRef, type TaskResult } from '@celeriac/core';
import { duplicate } from './connection.js';
import type { KeyCache } from './keys.js';
import { RedisMarks } from './marks.js';
import type { Client, Scripts } from './scripts.js';
import { Subscriber } from './subscriber.js';

/**
 * Results and idempotency records in Redis, under each queue's hash tag.
 * 1. Records live at `<queue>:r:<id>` with their TTL; a stored success is never replaced.
 * 2. `wait()` is woken by sharded pub/sub from the script that stored the record (no polling).
 * 3. Idempotency keys are leased to one delivery at a time (`claimKey`), and point at their
 *    first task and its outcome once stored.
 * The broker's `ack(settlement)` writes the same records inside its own script (settle-7.lua).
 */
export class RedisResultBackend implements ResultBackend {
  readonly capabilities = { push: true, shared: true };
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #keys: KeyCache;
  readonly #subscriber: Subscriber;
  readonly #ownsClient: boolean;
  readonly #closing = new Set<() => void>();
  /** The scheduler's last-run marks, kept beside the results. */
  readonly marks: RedisMarks;

  constructor(client: Client, scripts: Scripts, keys: KeyCache, ownsClient: boolean) {
    this.#client = client;
    this.#scripts = scripts;
    this.#keys = keys;
    this.#ownsClient = ownsClient;
    this.#subscriber = new Subscriber(() => duplicate(client, {}));
    this.marks = new RedisMarks(client, scripts, keys.prefix);
  }

  // The owner fence (rule 5), claimTask and reserveKey come with the Redis work of issue 8.
  async store({ record, ttlMs, keyTtlMs }: Settlement, options: StoreOptions = {}): Promise<boolean> {
    if (options.owner !== undefined) throw new BackendError('redis-backend: fenced store is not built yet');
    const keys = this.#keys.of(record.queue);
    const args = [keys.base, record.id, JSON.stringify(record), Math.ceil(ttlMs), Math.ceil(keyTtlMs), record.idempotencyKey ?? '', record.state];
    await this.#scripts.run('store', [keys.result(record.id)], args);
    return true;
  }

  async claimTask(): Promise<KeyClaim> {
    throw new BackendError('redis-backend: claimTask is not built yet');
  }

  async releaseTask(): Promise<void> {
    throw new BackendError('redis-backend: releaseTask is not built yet');
  }

  async reserveKey(): Promise<string> {
    throw new BackendError('redis-backend: reserveKey is not built yet');
  }

  async get(ref: TaskRef): Promise<TaskResult | null> {
    const text = await this.#client.get(this.#keys.of(ref.queue).result(ref.id));
    return text === null ? null : (JSON.parse(text) as TaskResult);
  }

  async wait(ref: TaskRef, { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal }): Promise<TaskResult | null> {
    if (signal?.aborted) return this.get(ref);
    let finish!: (record: TaskResult | null) => void;
    const outcome = new Promise<TaskResult | null>((resolve) => (finish = resolve));
    const check = () => void this.get(ref).then((record) => record && finish(record), () => {});
    const stop = await this.#subscriber.listen(this.#keys.of(ref.queue).channel, ref.id, check);
    const onAbort = () => finish(null);
    const timer = setTimeout(onAbort, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort(); // aborted while subscribing: the listener came too late
    this.#closing.add(onAbort);
    try {
      // Subscribed first, then read: a record stored in between is either read here or announced.
      const now = await this.get(ref);
      if (now) finish(now);
      return await outcome;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.#closing.delete(onAbort);
      stop();
    }
  }

  async claimKey(ref: KeyRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    const keys = this.#keys.of(ref.queue);
    const reply = (await this.#scripts.run('claim-key', [keys.idempotency(ref.key)], [owner, Math.ceil(leaseMs)])) as string[];
    if (reply[0] === 'done') return { status: 'done', record: JSON.parse(reply[1]!) as TaskResult };
    return reply[0] === 'busy' ? { status: 'busy' } : { status: 'acquired' };
  }

  async releaseKey(ref: KeyRef, owner: string): Promise<void> {
    await this.#scripts.run('release-key', [this.#keys.of(ref.queue).idempotency(ref.key)], [owner]);
  }

  async close(): Promise<void> {
    for (const wake of [...this.#closing]) wake();
    await this.#subscriber.close();
    if (this.#ownsClient) await this.#client.quit().catch(() => {});
  }
}
