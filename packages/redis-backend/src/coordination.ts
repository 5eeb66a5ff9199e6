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
} from '@celeriac/core';
import type { Client, Scripts } from './scripts.js';

/** Ids per `getRecords` script call: Lua's `unpack` has a stack limit well above this. */
const IDS_PER_CALL = 1_000;

/**
 * The coordination primitives in Redis. Every key of a scope starts with `<prefix>:{<scope>}:`,
 * so each call touches one hash slot and runs as one script (Redis Cluster safe):
 * - a kind of records is a hash (`rec:<kind>`, id → JSON) plus a sorted set of expiries
 *   (`rec:<kind>:exp`; `inf` for none), pruned by the scripts that write and list it;
 * - a semaphore is a sorted set (`sem:<name>`, holder → lease end) that expires with its longest lease;
 * - a scope's version is a counter (`v`).
 * Times are Redis' own (`TIME`), like the broker's leases.
 */
export class RedisCoordination implements Coordination {
  constructor(
    private readonly client: Client,
    private readonly scripts: Scripts,
    private readonly prefix: string,
  ) {}

  async putRecord(ref: RecordRef, value: unknown, ttlMs: number | null): Promise<void> {
    const json = encodeRecord(ref, value);
    await this.scripts.run('put-record', this.#kindKeys(ref.scope, ref.kind), [ref.id, json, ttlMs === null ? '' : Math.max(1, Math.ceil(ttlMs))]);
  }

  async getRecords(scope: string, kind: string, ids: readonly string[]): Promise<unknown[]> {
    const keys = this.#kindKeys(scope, kind);
    const chunks: Promise<unknown>[] = [];
    for (let i = 0; i < ids.length; i += IDS_PER_CALL) chunks.push(this.scripts.run('get-records', keys, ids.slice(i, i + IDS_PER_CALL)));
    const replies = (await Promise.all(chunks)) as (string | null)[][];
    return replies.flat().map((json) => (json === null ? null : JSON.parse(json)));
  }

  async listRecords(scope: string, kind: string, options?: ListOptions): Promise<StoredRecord[]> {
    const reply = (await this.scripts.run('list-records', this.#kindKeys(scope, kind), [listLimit(options), options?.latestFirst ? 1 : 0])) as string[];
    const out: StoredRecord[] = [];
    for (let i = 0; i < reply.length; i += 2) out.push({ id: reply[i]!, value: JSON.parse(reply[i + 1]!) });
    return out;
  }

  async deleteRecord(ref: RecordRef): Promise<boolean> {
    return (await this.scripts.run('delete-record', this.#kindKeys(ref.scope, ref.kind), [ref.id])) === 1;
  }

  async acquire(ref: SemaphoreRef, holder: string, options: { limit: number; leaseMs: number }): Promise<boolean> {
    assertSemaphoreOptions(options);
    return (await this.scripts.run('acquire', [this.#semaphoreKey(ref)], [holder, options.limit, Math.ceil(options.leaseMs)])) === 1;
  }

  /** One script call per hold, issued together: ioredis pipelines them into one round trip (per node on a cluster). */
  async renew(holds: readonly Hold[], leaseMs: number): Promise<boolean[]> {
    const lease = Math.max(1, Math.ceil(leaseMs));
    const replies = await Promise.all(holds.map(({ ref, holder }) => this.scripts.run('renew-hold', [this.#semaphoreKey(ref)], [holder, lease])));
    return replies.map((r) => r === 1);
  }

  async release(ref: SemaphoreRef, holder: string): Promise<void> {
    await this.client.zrem(this.#semaphoreKey(ref), holder);
  }

  async bumpVersion(scope: string): Promise<number> {
    return this.client.incr(this.#versionKey(scope));
  }

  async version(scope: string): Promise<number> {
    return Number((await this.client.get(this.#versionKey(scope))) ?? 0);
  }

  #base(scope: string): string {
    return `${this.prefix}:{${assertScope(scope)}}:`;
  }

  #kindKeys(scope: string, kind: string): [string, string] {
    const hash = `${this.#base(scope)}rec:${assertKind(kind)}`;
    return [hash, `${hash}:exp`];
  }

  #semaphoreKey(ref: SemaphoreRef): string {
    return `${this.#base(ref.scope)}sem:${assertSemaphoreName(ref.name)}`;
  }

  #versionKey(scope: string): string {
    return `${this.#base(scope)}v`;
  }
}
