import type { ErrorInfo } from '../errors.js';
import type { BrokerOptions, DeadLetter } from '../broker.js';
import { MAX_PRIORITY } from '../envelope.js';
import { Fifo, TimeHeap } from './heap.js';

export type LiveState = 'pending' | 'scheduled' | 'active' | 'retrying';

export interface Entry {
  id: string;
  /** The message as it is on the wire: JSON text, parsed again on every fetch. */
  raw: string;
  priority: number;
  state: LiveState;
  token: string | null;
  leaseUntil: number;
  /** Leases of the current attempt that lapsed unsettled (`Delivery.lapses`); a retry resets it. */
  lapses: number;
}

/**
 * One queue of the in-memory broker.
 * 1. Ready entries in one FIFO per priority (O(1) push and take, priority 9 first).
 * 2. Delayed entries (eta, retries, releases) in a heap by due time, promoted when due.
 * 3. Leased entries in `inFlight`; when a lease lapses the entry counts the lapse and goes back
 *    ahead of the backlog of its priority (it was taken first once, and waited a lease already).
 * 4. Dead letters by id (a Map keeps them in burial order), kept within `deadLetters.maxCount`
 *    and `maxAgeMs` (oldest go first); taken out again by id (redrive, discard).
 * 5. Purge: drops every ready and delayed entry, leaving leased ones to settle.
 * 6. Peek: lists ready entries in take order and delayed ones by due time, moving nothing.
 */
export class MemoryQueue {
  readonly entries = new Map<string, Entry>();
  readonly inFlight = new Map<string, Entry>();
  /** Burial order: a letter buried again under the same id moves to the end. */
  readonly #dead = new Map<string, DeadLetter>();
  readonly #ready = Array.from({ length: MAX_PRIORITY + 1 }, () => new Fifo<Entry>());
  /** Reclaimed entries (lapsed leases), served before `#ready` of the same priority. */
  readonly #reclaimed = Array.from({ length: MAX_PRIORITY + 1 }, () => new Fifo<Entry>());
  readonly #delayed = new TimeHeap<Entry>();
  #readyCount = 0;
  completed = 0;
  failed = 0;

  constructor(
    readonly name: string,
    readonly retention: BrokerOptions['deadLetters'],
  ) {}

  get readyCount(): number {
    return this.#readyCount;
  }

  get delayedCount(): number {
    return this.#delayed.size;
  }

  /** Queues `entry` to run at `at` (now or later), as `pending`/`scheduled` or the given state. */
  enqueue(entry: Entry, at: number, now: number, retrying = false): void {
    this.promoteDelayed(now);
    entry.token = null;
    entry.leaseUntil = 0;
    this.inFlight.delete(entry.id);
    if (at > now) {
      entry.state = retrying ? 'retrying' : 'scheduled';
      this.#delayed.push(at, entry);
    } else {
      entry.state = retrying ? 'retrying' : 'pending';
      this.#ready[entry.priority]!.push(entry);
      this.#readyCount++;
    }
  }

  /** Moves due delayed entries and lapsed leases to ready. */
  promote(now: number): void {
    this.promoteDelayed(now);
    for (const entry of this.inFlight.values()) {
      if (entry.leaseUntil > now) continue;
      this.inFlight.delete(entry.id);
      entry.token = null;
      entry.leaseUntil = 0;
      entry.state = 'pending';
      entry.lapses++;
      this.#reclaimed[entry.priority]!.push(entry);
      this.#readyCount++;
    }
  }

  /** Moves due delayed entries to ready, so they go ahead of anything that becomes ready after them. */
  promoteDelayed(now: number): void {
    for (let e = this.#delayed.popDue(now); e; e = this.#delayed.popDue(now)) {
      this.#ready[e.priority]!.push(e);
      this.#readyCount++;
      if (e.state === 'scheduled') e.state = 'pending';
    }
  }

  /** Takes the most urgent ready entry (reclaimed ones first within a priority), or undefined. */
  take(): Entry | undefined {
    for (let p = MAX_PRIORITY; p >= 0; p--) {
      const entry = this.#reclaimed[p]!.shift() ?? this.#ready[p]!.shift();
      if (entry) {
        this.#readyCount--;
        return entry;
      }
    }
    return undefined;
  }

  /** The first `limit` ready entries in the order `take` would return them, left in place. */
  peekReady(limit: number): Entry[] {
    const out: Entry[] = [];
    for (let p = MAX_PRIORITY; p >= 0 && out.length < limit; p--) {
      out.push(...this.#reclaimed[p]!.head(limit - out.length));
      out.push(...this.#ready[p]!.head(limit - out.length));
    }
    return out;
  }

  /** The `limit` delayed entries due soonest, soonest first, with their due times; left in place. */
  peekDelayed(limit: number): { at: number; value: Entry }[] {
    return this.#delayed.earliest(limit);
  }

  /** Earliest time something here becomes ready (delayed due or lease lapse), or Infinity. */
  nextDue(): number {
    let next = this.#delayed.peekAt() ?? Infinity;
    for (const entry of this.inFlight.values()) if (entry.leaseUntil < next) next = entry.leaseUntil;
    return next;
  }

  remove(entry: Entry): void {
    this.entries.delete(entry.id);
    this.inFlight.delete(entry.id);
  }

  /** `id`: the entry's id (the task id, or the id an injected raw message was stored under). */
  bury(id: string, raw: string, reason: string, error: ErrorInfo | null, at: number): void {
    this.#dead.delete(id);
    this.#dead.set(id, { id, raw, reason, error, at });
    this.failed++;
    this.#prune(at);
  }

  /** The newest `limit` dead letters still within retention, oldest first. */
  deadLetters(now: number, limit: number): DeadLetter[] {
    this.#prune(now);
    if (limit <= 0) return [];
    return [...this.#dead.values()].slice(-limit);
  }

  deadLetter(id: string, now: number): DeadLetter | undefined {
    this.#prune(now);
    return this.#dead.get(id);
  }

  deadIds(now: number): string[] {
    this.#prune(now);
    return [...this.#dead.keys()];
  }

  /** Takes a dead letter out (redriven or discarded); false when there is none by that id. */
  unbury(id: string): boolean {
    return this.#dead.delete(id);
  }

  deadCount(now: number): number {
    this.#prune(now);
    return this.#dead.size;
  }

  /** Removes every ready and delayed entry (leased ones stay); returns them. */
  purge(): Entry[] {
    const out: Entry[] = [];
    for (let e = this.take(); e; e = this.take()) out.push(e);
    for (let e = this.#delayed.popDue(Infinity); e; e = this.#delayed.popDue(Infinity)) out.push(e);
    for (const e of out) this.entries.delete(e.id);
    return out;
  }

  #prune(now: number): void {
    const { maxCount, maxAgeMs } = this.retention;
    for (const [id, d] of this.#dead) {
      if (this.#dead.size <= maxCount && now - d.at <= maxAgeMs) break;
      this.#dead.delete(id);
    }
  }
}
