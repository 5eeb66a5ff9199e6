import { assertQueueName } from '@celeriac/core';

/**
 * Key names. Every key of a queue starts with `<prefix>:{<queue>}:` so the whole queue lives in
 * one hash slot (Redis Cluster). Queue names cannot contain braces (core's name rules) and the
 * prefix is checked for them, so the queue's tag is always the first `{…}` of the key, even for
 * idempotency keys that contain braces themselves.
 */
export class QueueKeys {
  readonly base: string;
  /** The standard KEYS of the queue scripts, in their order (see lua/lib/queue.lua). */
  readonly main: readonly string[];
  readonly wake: string;
  readonly channel: string;

  constructor(prefix: string, readonly queue: string) {
    this.base = `${prefix}:{${queue}}:`;
    const b = this.base;
    this.main = [`${b}msg`, `${b}task`, `${b}delayed`, `${b}lease`, `${b}wake`, `${b}dead:at`, `${b}stats`];
    this.wake = `${b}wake`;
    this.channel = `${b}done`;
  }

  get task(): string {
    return this.main[1]!;
  }

  /** KEYS of the dead-letter scripts: the `dead:at` zset and the `dead:letters` hash (lua/lib/dead.lua). */
  get dead(): [string, string] {
    return [this.main[5]!, `${this.base}dead:letters`];
  }

  /** KEYS of the renew script: the task records (holding tokens) and the lease set. */
  get leaseKeys(): string[] {
    return [this.main[1]!, this.main[3]!];
  }

  result(id: string): string {
    return `${this.base}r:${id}`;
  }

  /** A task's claim (`claimTask`), which fences `store(…, { owner })`. */
  claim(id: string): string {
    return `${this.base}c:${id}`;
  }

  idempotency(key: string): string {
    return `${this.base}k:${key}`;
  }

  /** An idempotency key's claim: a semaphore of one holder, as `Coordination` keeps them (`sem:<name>`). */
  keyClaim(key: string): string {
    return `${this.base}sem:key:${key}`;
  }
}

/** One QueueKeys per queue name, made once. */
export class KeyCache {
  readonly #cache = new Map<string, QueueKeys>();
  constructor(readonly prefix: string) {}

  /** Every key is built here, so this is where a queue name is checked (once, on first use). */
  of(queue: string): QueueKeys {
    let keys = this.#cache.get(queue);
    if (!keys) this.#cache.set(queue, (keys = new QueueKeys(this.prefix, assertQueueName(queue))));
    return keys;
  }
}
