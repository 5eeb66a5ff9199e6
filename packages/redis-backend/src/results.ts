import { type KeyClaim, type KeyRef, type ResultBackend, type Settlement, type StoreOptions, type TaskRef, type TaskResult } from '@celeriac/core';
import { duplicate, quitWithin } from './connection.js';
import type { ProducerLink } from './producer.js';
import type { KeyCache } from './keys.js';
import { RedisCoordination } from './coordination.js';
import { RedisMarks } from './marks.js';
import type { Client, Scripts } from './scripts.js';
import { Subscriber } from './subscriber.js';

/**
 * Results and idempotency records in Redis, under each queue's hash tag.
 * 1. Records live at `<queue>:r:<id>` with their TTL; a stored success is never replaced.
 * 2. `wait()` is woken by sharded pub/sub from the script that stored the record (no polling).
 * 3. Idempotency keys are leased to one delivery at a time (`claimKey`), and point at their
 *    first task and its outcome once stored; `reserveKey` points a key at its first task for
 *    brokers that keep no shared records (the same record the Redis broker's publish writes);
 *    `unreserveKey` gives it back when that publish failed (a compare-and-delete).
 * 4. Task ids are leased too (`claimTask`, `<queue>:c:<id>`): `store(s, { owner })` writes only
 *    while `owner` holds that claim, and releases it, in one script, so a stale owner's outcome
 *    is never stored over the new owner's (rule 5).
 * The broker's `ack(settlement)` writes the same records inside its own script (settle-7.lua).
 */
export class RedisResultBackend implements ResultBackend {
  readonly capabilities = { push: true, shared: true };
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #keys: KeyCache;
  readonly #subscriber: Subscriber;
  readonly #ownsClient: boolean;
  /** Where `reserveKey` runs: it is part of publishing, so it gets the producer path's bound. */
  readonly #producer: ProducerLink;
  readonly #closing = new Set<() => void>();
  /** The scheduler's last-run marks, kept beside the results. */
  readonly marks: RedisMarks;
  /** The control plane's shared state, beside the results. */
  readonly coordination: RedisCoordination;

  constructor(client: Client, scripts: Scripts, keys: KeyCache, { ownsClient, producer }: { ownsClient: boolean; producer: ProducerLink }) {
    this.#client = client;
    this.#scripts = scripts;
    this.#keys = keys;
    this.#ownsClient = ownsClient;
    this.#producer = producer;
    this.#subscriber = new Subscriber(() => duplicate(client, {}));
    this.marks = new RedisMarks(client, scripts, keys.prefix);
    this.coordination = new RedisCoordination(client, scripts, keys.prefix);
  }

  async store({ record, ttlMs, keyTtlMs }: Settlement, { owner }: StoreOptions = {}): Promise<boolean> {
    const keys = this.#keys.of(record.queue);
    const args = [keys.base, record.id, JSON.stringify(record), Math.ceil(ttlMs), Math.ceil(keyTtlMs), record.idempotencyKey ?? '', record.state, owner ?? ''];
    return (await this.#scripts.run('store', [keys.result(record.id), keys.claim(record.id)], args)) === 1;
  }

  async claimTask(ref: TaskRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    const keys = this.#keys.of(ref.queue);
    const reply = (await this.#scripts.run('claim-task', [keys.result(ref.id), keys.claim(ref.id)], [owner, Math.max(1, Math.ceil(leaseMs))])) as string[];
    return toClaim(reply);
  }

  async releaseTask(ref: TaskRef, owner: string): Promise<void> {
    await this.#scripts.run('release-task', [this.#keys.of(ref.queue).claim(ref.id)], [owner]);
  }

  async reserveKey(ref: KeyRef, taskId: string, ttlMs: number): Promise<string> {
    const keys = [this.#keys.of(ref.queue).idempotency(ref.key)];
    const what = `reserving idempotency key ${JSON.stringify(ref.key)} on queue ${ref.queue}`;
    return (await this.#producer.run('reserve-key', keys, [taskId, Math.max(1, Math.ceil(ttlMs))], what)) as string;
  }

  async unreserveKey(ref: KeyRef, taskId: string): Promise<void> {
    const keys = [this.#keys.of(ref.queue).idempotency(ref.key)];
    const what = `giving back idempotency key ${JSON.stringify(ref.key)} on queue ${ref.queue}`;
    await this.#producer.run('unreserve-key', keys, [taskId], what);
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
    return toClaim((await this.#scripts.run('claim-key', [keys.idempotency(ref.key), keys.keyClaim(ref.key)], [owner, Math.ceil(leaseMs)])) as string[]);
  }

  /** One DEL per task (its record and claim share the queue's slot), issued together: one round trip. */
  async forget(refs: readonly TaskRef[]): Promise<void> {
    await Promise.all(refs.map((ref) => this.#client.del(this.#keys.of(ref.queue).result(ref.id), this.#keys.of(ref.queue).claim(ref.id))));
  }

  async releaseKey(ref: KeyRef, owner: string): Promise<void> {
    await this.#scripts.run('release-key', [this.#keys.of(ref.queue).keyClaim(ref.key)], [owner]);
  }

  async close(): Promise<void> {
    for (const wake of [...this.#closing]) wake();
    await this.#subscriber.close();
    if (this.#ownsClient) {
      await this.#producer.close();
      await quitWithin(this.#client);
    }
  }
}

/** A claim script's reply (claim-key-2.lua, claim-task-2.lua) as a KeyClaim. */
function toClaim(reply: string[]): KeyClaim {
  if (reply[0] === 'done') return { status: 'done', record: JSON.parse(reply[1]!) as TaskResult };
  return reply[0] === 'busy' ? { status: 'busy' } : { status: 'acquired' };
}
