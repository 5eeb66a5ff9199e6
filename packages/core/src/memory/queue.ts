import type { ErrorInfo } from '../errors.js';
import type { DeadLetter } from '../broker.js';
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
}

/**
 * One queue of the in-memory broker.
 * 1. Ready entries in one FIFO per priority (O(1) push and take, priority 9 first).
 * 2. Delayed entries (eta, retries, releases) in a heap by due time, promoted when due.
 * 3. Leased entries in `inFlight`, returned to ready when their lease lapses.
 */
export class MemoryQueue {
  readonly entries = new Map<string, Entry>();
  readonly inFlight = new Map<string, Entry>();
  readonly dead: DeadLetter[] = [];
  readonly #ready = Array.from({ length: MAX_PRIORITY + 1 }, () => new Fifo<Entry>());
  readonly #delayed = new TimeHeap<Entry>();
  #readyCount = 0;
  completed = 0;
  failed = 0;

  constructor(readonly name: string) {}

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
      if (entry.leaseUntil <= now) this.enqueue(entry, now, now);
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

  /** Takes the most urgent ready entry at or above `minPriority`, or undefined. */
  takeAtLeast(minPriority: number): Entry | undefined {
    for (let p = MAX_PRIORITY; p >= minPriority; p--) {
      const entry = this.#ready[p]!.shift();
      if (entry) {
        this.#readyCount--;
        return entry;
      }
    }
    return undefined;
  }

  topPriority(): number {
    for (let p = MAX_PRIORITY; p >= 0; p--) if (this.#ready[p]!.size > 0) return p;
    return -1;
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

  bury(raw: string, reason: string, error: ErrorInfo | null, at: number): void {
    this.dead.push({ raw, reason, error, at });
    this.failed++;
  }
}
