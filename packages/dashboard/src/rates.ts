import type { TaskCounts, WorkerInfo } from '@celeriac/core';
import type { Series } from './api.js';

/**
 * Tasks per second, counted from the workers' registry records (pure logic, no I/O):
 * 1. `CountsLedger` turns each worker's cumulative `counts` into deltas between two of its
 *    records. A worker first seen counts from its start when it started since the previous
 *    observation (its own uptime, `lastSeen - startedAt`, against the dashboard's time between
 *    observations: no comparison across clocks), else its first record is a baseline. A record
 *    without `counts` (an older worker) is no data. A worker that left is remembered for hours
 *    (past `MAX_REMEMBERED` workers in all, the longest gone are forgotten first; those online
 *    now never are), so one that comes back with the same id counts only what is new.
 * 2. Deltas are placed on the dashboard's clock: each worker's times are shifted by the smallest
 *    gap seen between its `lastSeen` and the dashboard reading it (its clock's offset, plus the
 *    shortest delay), so a worker whose clock is off still lands in the right seconds.
 * 3. `RateSeries` spreads each delta evenly over the time between the two records' `lastSeen`
 *    (heartbeats are 2 s apart), in 1-s buckets kept for `historyMs`.
 */

/** What one worker ended or retried of one task in one queue between two of its records, `from` < `to` (ms, the dashboard's clock). */
export interface CountsDelta extends TaskCounts {
  from: number;
  to: number;
}

const OUTCOMES = ['succeeded', 'failed', 'retried', 'expired', 'revoked'] as const;

/** How long a worker's last counts are kept once its record is gone (it may come back with the same id). */
export const GONE_KEEP_MS = 6 * 3_600_000;

/** Most workers remembered at once, unless more are online (a bound on memory whatever the churn). */
export const MAX_REMEMBERED = 10_000;

/** Slack on "started since the previous observation": the read's own duration and a heartbeat. */
const NEW_SLACK_MS = 5_000;

interface Seen {
  lastSeen: number;
  counts: Map<string, TaskCounts>;
  goneSince: number | null;
  /** Dashboard time minus worker time, the smallest seen (see 2 above). */
  offset: number;
}

export class CountsLedger {
  /** By id, least recently seen first (an entry is moved to the end when seen). */
  readonly #workers = new Map<string, Seen>();
  #observed: number;
  #warned = false;

  /**
   * @param since when the dashboard started: the first observation's "previous" one.
   * @param warn told once when more workers than `MAX_REMEMBERED` are online at once.
   */
  constructor(
    since: number,
    private readonly warn: (message: string) => void = (m) => process.emitWarning(m, 'CeleriacWarning'),
  ) {
    this.#observed = since;
  }

  /** The deltas since the previous records; `workers` is the whole registry now, read at `now`. */
  observe(workers: readonly WorkerInfo[], now: number): CountsDelta[] {
    const deltas: CountsDelta[] = [];
    for (const w of workers) {
      if (!Array.isArray(w.counts)) continue;
      const counts = new Map(w.counts.map((c) => [key(c), c]));
      const seen = this.#workers.get(w.id);
      if (!seen) {
        const offset = now - w.lastSeen;
        this.#remember(w.id, { lastSeen: w.lastSeen, counts, goneSince: null, offset });
        const fresh = w.lastSeen - w.startedAt <= now - this.#observed + NEW_SLACK_MS;
        if (fresh) deltas.push(...diff(new Map(), counts, w.startedAt + offset, w.lastSeen + offset));
        continue;
      }
      this.#remember(w.id, seen);
      seen.goneSince = null;
      seen.offset = Math.min(seen.offset, now - w.lastSeen);
      if (w.lastSeen <= seen.lastSeen) continue;
      deltas.push(...diff(seen.counts, counts, seen.lastSeen + seen.offset, w.lastSeen + seen.offset));
      seen.lastSeen = w.lastSeen;
      seen.counts = counts;
    }
    const present = new Set(workers.map((w) => w.id));
    for (const [id, seen] of this.#workers) {
      if (present.has(id)) continue;
      seen.goneSince ??= now;
      if (now - seen.goneSince >= GONE_KEEP_MS) this.#workers.delete(id);
    }
    this.#forgetGone(present.size);
    this.#observed = now;
    return deltas;
  }

  /** Workers whose counts are remembered (for tests). */
  get size(): number {
    return this.#workers.size;
  }

  #remember(id: string, seen: Seen): void {
    this.#workers.delete(id);
    this.#workers.set(id, seen);
  }

  /** Over the cap, forgets the longest-gone workers; never one present now (its work would go uncounted). */
  #forgetGone(presentCount: number): void {
    for (const [id, seen] of this.#workers) {
      if (this.#workers.size <= MAX_REMEMBERED) return;
      if (seen.goneSince !== null) this.#workers.delete(id);
    }
    if (presentCount > MAX_REMEMBERED && !this.#warned) {
      this.#warned = true;
      this.warn(`${presentCount} workers online, more than the ${MAX_REMEMBERED} the dashboard expects: all are counted, using more memory`);
    }
  }
}

function key(c: { queue: string; task: string }): string {
  return `${c.queue}\u0000${c.task}`;
}

function diff(before: Map<string, TaskCounts>, after: Map<string, TaskCounts>, from: number, to: number): CountsDelta[] {
  const deltas: CountsDelta[] = [];
  for (const [k, now] of after) {
    const was = before.get(k);
    // Counts only grow; a smaller one (a record rewritten by hand) is no delta, not a negative one.
    const d = Object.fromEntries(OUTCOMES.map((o) => [o, Math.max(0, num(now[o]) - num(was?.[o]))])) as Record<(typeof OUTCOMES)[number], number>;
    if (OUTCOMES.some((o) => d[o] > 0)) deltas.push({ queue: now.queue, task: now.task, ...d, from, to });
  }
  return deltas;
}

function num(x: unknown): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : 0;
}

/** Tasks that reached a final state (a retried attempt is not one). */
export function processedOf(d: TaskCounts): number {
  return d.succeeded + d.failed + d.expired + d.revoked;
}

export const STEP_MS = 1_000;

/** Slots a ring starts with (a minute); it doubles, up to the history kept, only when live seconds collide. */
const FIRST_SLOTS = 64;

/**
 * One series' seconds, each slot tagged with the second it holds (a slot whose tag is another
 * second reads as 0). Memory: 24 bytes a slot, at most `historyMs / 1000` slots (21 KB for the
 * default 15 minutes, 2 MB for 24 h) per queue with tasks in that history, plus one for all
 * queues; queues no longer listed are dropped (`retain`), and the registry lists a bounded number.
 */
interface Ring {
  second: Float64Array;
  processed: Float64Array;
  failed: Float64Array;
}

export class RateSeries {
  readonly #size: number;
  readonly #queues = new Map<string, Ring>();
  readonly #all: Ring;

  /** @param start when counting began: series never reach back before it. */
  constructor(
    readonly historyMs: number,
    private readonly start: number,
  ) {
    this.#size = Math.ceil(historyMs / STEP_MS);
    this.#all = this.#ring(Math.min(FIRST_SLOTS, this.#size));
  }

  /** Spreads a delta over [from, to) (clamped to `now`); what falls before the history kept is dropped. */
  add(delta: CountsDelta, now: number): void {
    const processed = processedOf(delta);
    if (processed === 0 && delta.failed === 0) return;
    let ring = this.#queues.get(delta.queue);
    if (!ring) this.#queues.set(delta.queue, (ring = this.#ring(Math.min(FIRST_SLOTS, this.#size))));
    const to = Math.min(delta.to, now);
    const from = Math.min(delta.from, to);
    const nowSecond = Math.floor(now / STEP_MS);
    const oldest = nowSecond - this.#size + 1;
    if (to - from <= 0) return this.#put([ring, this.#all], Math.max(oldest, Math.floor((to - 1) / STEP_MS)), processed, delta.failed, oldest);
    const span = to - from;
    for (let s = Math.max(Math.floor(from / STEP_MS), oldest); s * STEP_MS < to; s++) {
      const overlap = Math.min(to, (s + 1) * STEP_MS) - Math.max(from, s * STEP_MS);
      if (overlap > 0) this.#put([ring, this.#all], s, (processed * overlap) / span, (delta.failed * overlap) / span, oldest);
    }
  }

  /** How many points a series can hold: `historyMs` in steps. */
  get capacity(): number {
    return this.#size;
  }

  /** The last `points` (at most `capacity`) of the series of `queue` (all queues when null), the last point ending at `end` (a multiple of `STEP_MS`). */
  series(queue: string | null, end: number, points = this.#size): Series {
    const ring = queue === null ? this.#all : this.#queues.get(queue);
    const last = Math.floor(end / STEP_MS) - 1;
    const count = Math.max(0, Math.min(this.#size, points, last - Math.floor(this.start / STEP_MS) + 1));
    const processed: number[] = [];
    const failed: number[] = [];
    for (let s = last - count + 1; s <= last; s++) {
      const i = ring === undefined ? 0 : slot(s, ring.second.length);
      const live = ring !== undefined && ring.second[i] === s;
      processed.push(live ? round(ring.processed[i]!) : 0);
      failed.push(live ? round(ring.failed[i]!) : 0);
    }
    return { stepMs: STEP_MS, end: (last + 1) * STEP_MS, processed, failed };
  }

  /** Forgets queues no longer listed (their rings), keeping memory bounded by the queues in use. */
  retain(queues: ReadonlySet<string>): void {
    for (const q of this.#queues.keys()) if (!queues.has(q)) this.#queues.delete(q);
  }

  /** Slots allocated for `queue` (all queues when null), 0 when none: for tests of the memory bound. */
  slots(queue: string | null): number {
    return (queue === null ? this.#all : this.#queues.get(queue))?.second.length ?? 0;
  }

  #ring(slots: number): Ring {
    return { second: new Float64Array(slots).fill(-1), processed: new Float64Array(slots), failed: new Float64Array(slots) };
  }

  #put(rings: Ring[], second: number, processed: number, failed: number, oldest: number): void {
    if (second < oldest) return;
    for (const ring of rings) {
      let i = slot(second, ring.second.length);
      // Doubling may not be enough: seconds 2× the old length apart share a slot again.
      while (ring.second[i] !== second && ring.second[i]! >= oldest && ring.second.length < this.#size) {
        this.#grow(ring, oldest);
        i = slot(second, ring.second.length);
      }
      if (ring.second[i] !== second) {
        ring.second[i] = second;
        ring.processed[i] = 0;
        ring.failed[i] = 0;
      }
      ring.processed[i]! += processed;
      ring.failed[i]! += failed;
    }
  }

  /** Doubles a ring (up to the history kept), moving the seconds still within it. */
  #grow(ring: Ring, oldest: number): void {
    const old = { ...ring };
    const bigger = this.#ring(Math.min(this.#size, old.second.length * 2));
    for (let i = 0; i < old.second.length; i++) {
      const s = old.second[i]!;
      if (s < oldest) continue;
      const j = slot(s, bigger.second.length);
      bigger.second[j] = s;
      bigger.processed[j] = old.processed[i]!;
      bigger.failed[j] = old.failed[i]!;
    }
    Object.assign(ring, bigger);
  }
}

function slot(second: number, size: number): number {
  return ((second % size) + size) % size;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
