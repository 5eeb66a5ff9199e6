import { Redis } from 'ioredis';

/** One handler run as the ledger saw it (blocked-loop and partition scenarios read these). */
export interface RunEvent {
  i: number;
  run: number;
  pid: number;
  phase: 'start' | 'end' | 'aborted';
  at: number;
}

/**
 * The side-effect ledger: what handlers did, written by the workers and read by the runner, on
 * the suite's private Redis (never the broker under test, so a broker fault cannot erase it).
 * Tasks are numbered (`i`) and keys are numbered (`k`), so it scales to a million tasks in bitmaps.
 * 1. `done` — a bit per task whose effect took place; a second effect of the same task counts in `dup`.
 * 2. `keyed` — effects per idempotency key, by a handler that keys its effect (check, work, record).
 * 3. `active:<k>` — runs of a key in progress right now; `overlaps` counts runs that found another.
 * 4. `runs` — handler starts per task; `events` — start/end times for the scenarios that time takeovers.
 */
export class Ledger {
  readonly redis: Redis;
  constructor(url: string, readonly prefix: string) {
    // A ledger write must not be lost to a blip: no offline queue limit, retry forever with a cap.
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 50, 1_000) });
  }

  #k(name: string): string {
    return `${this.prefix}:${name}`;
  }

  /** Records a handler start; returns the run number of this task (1 on its first run). */
  async start(i: number): Promise<number> {
    return this.redis.hincrby(this.#k('runs'), String(i), 1);
  }

  async event(e: RunEvent): Promise<void> {
    await this.redis.rpush(this.#k('events'), JSON.stringify(e));
  }

  /** The task's own effect: a bit per task; a repeat is a duplicate effect. */
  async effect(i: number): Promise<void> {
    const old = await this.redis.setbit(this.#k('done'), i, 1);
    if (old === 1) await this.redis.hincrby(this.#k('dup'), String(i), 1);
  }

  /** Enters a run of key `k`; returns how many runs of it are in progress, this one included. */
  async enterKey(k: number): Promise<number> {
    const n = await this.redis.incr(this.#k(`active:${k}`));
    if (n > 1) await this.redis.rpush(this.#k('overlaps'), JSON.stringify({ k, n, pid: process.pid, at: Date.now() }));
    return n;
  }

  async leaveKey(k: number): Promise<void> {
    await this.redis.decr(this.#k(`active:${k}`));
  }

  /** Whether key `k`'s effect is already recorded (the handler's own idempotency check). */
  async keyDone(k: number): Promise<boolean> {
    return (await this.redis.hexists(this.#k('keyed'), String(k))) === 1;
  }

  async keyEffect(k: number): Promise<void> {
    await this.redis.hincrby(this.#k('keyed'), String(k), 1);
  }

  async count(name: string): Promise<number> {
    return this.redis.incr(this.#k(name));
  }

  async sample(name: string, value: number): Promise<void> {
    await this.redis.rpush(this.#k(name), `${Date.now()}:${value}`);
  }

  // ---- read side (the runner) ----

  /** A test for "task i's effect is recorded", from one read of the bitmap. */
  async doneSet(): Promise<(i: number) => boolean> {
    const bits = (await this.redis.getBuffer(this.#k('done'))) ?? Buffer.alloc(0);
    return (i) => ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
  }

  async doneCount(): Promise<number> {
    return this.redis.bitcount(this.#k('done'));
  }

  /** Extra effects of tasks (each repeat counts once). */
  async duplicates(): Promise<number> {
    const values = await this.redis.hvals(this.#k('dup'));
    return values.reduce((sum, v) => sum + Number(v), 0);
  }

  async keyed(): Promise<Map<number, number>> {
    const all = await this.redis.hgetall(this.#k('keyed'));
    return new Map(Object.entries(all).map(([k, v]) => [Number(k), Number(v)]));
  }

  async runs(): Promise<Map<number, number>> {
    const all = await this.redis.hgetall(this.#k('runs'));
    return new Map(Object.entries(all).map(([k, v]) => [Number(k), Number(v)]));
  }

  async events(): Promise<RunEvent[]> {
    return (await this.redis.lrange(this.#k('events'), 0, -1)).map((s) => JSON.parse(s) as RunEvent);
  }

  async overlaps(): Promise<number> {
    return this.redis.llen(this.#k('overlaps'));
  }

  async counter(name: string): Promise<number> {
    return Number((await this.redis.get(this.#k(name))) ?? 0);
  }

  async samples(name: string): Promise<{ at: number; value: number }[]> {
    return (await this.redis.lrange(this.#k(name), 0, -1)).map((s) => {
      const [at, value] = s.split(':');
      return { at: Number(at), value: Number(value) };
    });
  }

  /** Deletes this run's keys. */
  async clear(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await this.redis.unlink(...keys);
    } while (cursor !== '0');
  }

  close(): void {
    this.redis.disconnect();
  }
}
