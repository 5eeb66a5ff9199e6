import { BackendError, HEARTBEAT_MS, type App, type QueueInfo, type WorkerInfo } from '@celeriac/core';
import type { Series } from './api.js';
import type { DashboardSettings } from './options.js';
import { CountsLedger, RateSeries, type CountsDelta } from './rates.js';
import { HttpError } from './respond.js';

/** With no request and no scrape for this long, the sampler reads less often (`IDLE_REFRESH_MS`). */
export const IDLE_AFTER_MS = 60_000;

/** How often an idle sampler reads: the rate series lose nothing (the workers' counts are cumulative). */
export const IDLE_REFRESH_MS = 10_000;

/** A read pending this long is given up for good (a call that never settles), so a new one may start. */
export const ABANDON_AFTER_MS = 30_000;

/** Abandoned reads left pending at most: past them, the sampler waits for one to settle (the API says 503 meanwhile). */
export const MAX_ABANDONED = 3;

/** The series end this far behind the read: the last heartbeat of every worker has landed by then. */
const SERIES_LAG_MS = HEARTBEAT_MS + 1_000;

export interface Snapshot {
  at: number;
  /** False on a store that keeps no coordination state (RabbitMQ alone): queues come from `options.queues`, no workers. */
  control: boolean;
  queues: QueueInfo[];
  workers: WorkerInfo[];
}

/**
 * One per dashboard, so N open pages cost the broker what one does:
 * 1. Every `refreshMs` reads every queue's counts (the registry's queues, the paused ones and
 *    `options.queues`) and the worker registry; one read at a time, and at least half of
 *    `refreshMs` between the end of one and the start of the next (a slow broker is not read back
 *    to back). A read past `readTimeoutMs` makes the API answer 503, but it is not abandoned: no
 *    other read starts while it is pending (reads do not pile up on a hung broker), and its late
 *    answer, the newest data, is applied when it comes. A read still pending after
 *    `ABANDON_AFTER_MS` (a call that never settles) is given up for good, its answer ignored, and
 *    a fresh read may start: at most one such stuck read per `ABANDON_AFTER_MS`, and at most
 *    `MAX_ABANDONED` pending at once (then it waits for one to settle, answering 503). A snapshot
 *    is dated when its read began.
 * 2. With no request or scrape for `IDLE_AFTER_MS`, reads every `IDLE_REFRESH_MS`; the next
 *    request finds the snapshot stale and reads at once.
 * 3. Turns the workers' counts into rate series and tells `onDeltas` (the metrics) of each delta.
 * 4. Keeps the latest snapshot; after a failed read, `current()` rejects with the reason (503)
 *    until a read succeeds again.
 */
export class Sampler {
  readonly rates: RateSeries;
  readonly #ledger: CountsLedger;
  readonly #listeners: ((deltas: readonly CountsDelta[]) => void)[] = [];
  readonly #minGapMs: number;
  #snapshot: Snapshot | null = null;
  #error: Error | null = null;
  #first: Promise<void>;
  /** The tick under way, if any: it waits for the read at most `readTimeoutMs`. */
  #ticking: Promise<void> | null = null;
  /** The read under way, if any, whether a tick still waits for it or not. */
  #reading: Promise<void> | null = null;
  /** The read under way is past `readTimeoutMs`: requests answer 503 at once rather than wait for it. */
  #overdue = false;
  /** Bumped when a pending read is abandoned: an answer of an older generation changes nothing. */
  #generation = 0;
  #readStartedAt = 0;
  /** Abandoned reads still pending (calls that never settled). */
  #abandoned = 0;
  #lastStarted = 0;
  #lastEnded = 0;
  #lastDemand: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly app: App,
    private readonly settings: DashboardSettings,
    now = Date.now(),
  ) {
    this.rates = new RateSeries(settings.historyMs, now);
    this.#ledger = new CountsLedger(now);
    this.#minGapMs = settings.refreshMs / 2;
    this.#lastDemand = now;
    this.#first = this.#kick();
  }

  onDeltas(listener: (deltas: readonly CountsDelta[]) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * The latest snapshot (after the first read); rejects with a 503 while reads fail. A snapshot
   * older than `maxAgeMs` (default: two refreshes) is read again first, unless a read ended too
   * recently (the gap of 1.); `maxAgeMs` 0 asks for one taken after this call, gap allowing.
   */
  async current(maxAgeMs = 2 * this.settings.refreshMs): Promise<Snapshot> {
    const asked = Date.now();
    const wasIdle = asked - this.#lastDemand >= IDLE_AFTER_MS;
    this.#lastDemand = asked;
    if (wasIdle) {
      // The next read is up to IDLE_REFRESH_MS away: take a fresh one now, and the usual pace after.
      maxAgeMs = Math.min(maxAgeMs, this.settings.refreshMs);
      if (!this.#ticking) this.#schedule(this.#lastStarted);
    }
    await this.#first;
    if ((this.#snapshot === null || asked - this.#snapshot.at > maxAgeMs) && !this.#closed && !this.#overdue) {
      if (this.#ticking) await this.#ticking;
      if ((this.#snapshot === null || this.#snapshot.at < asked - maxAgeMs) && Date.now() - this.#lastEnded >= this.#minGapMs) await this.#kick();
    }
    if (this.#error || !this.#snapshot) throw new HttpError(503, 'UNAVAILABLE', `the broker or store cannot be read: ${this.#error?.message ?? 'no read yet'}`);
    return this.#snapshot;
  }

  /** The latest snapshot, or null before the first read (stale after a failed one: see `current`). */
  get latest(): Snapshot | null {
    return this.#snapshot;
  }

  /** The last `points` of the rate series of a queue (all queues when null), as of the latest read. */
  series(queue: string | null, at: number, points?: number): Series {
    return this.rates.series(queue, Math.floor((at - SERIES_LAG_MS) / 1_000) * 1_000, points);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  /** Reads now (or joins the read under way), then schedules the next. */
  #kick(): Promise<void> {
    if (this.#ticking) return this.#ticking;
    clearTimeout(this.#timer);
    const started = (this.#lastStarted = Date.now());
    this.#ticking = this.#tick().finally(() => {
      this.#ticking = null;
      this.#lastEnded = Date.now();
      this.#schedule(started);
    });
    return this.#ticking;
  }

  /** Starts a read unless one is pending, and waits for it at most `readTimeoutMs`. */
  async #tick(): Promise<void> {
    if (this.#reading && Date.now() - this.#readStartedAt > ABANDON_AFTER_MS && this.#abandoned < MAX_ABANDONED) {
      // It never settled: forget it, and read afresh (the call goes on: at most MAX_ABANDONED of them).
      this.#generation++;
      this.#abandoned++;
      const forgotten = this.#reading;
      void forgotten.finally(() => this.#abandoned--);
      this.#reading = null;
    }
    const generation = this.#generation;
    const current = () => generation === this.#generation;
    if (!this.#reading) this.#readStartedAt = Date.now();
    this.#reading ??= this.#read(current, this.#readStartedAt).then(
      () => void (current() && (this.#error = null)),
      (err: unknown) => void (current() && (this.#error = err instanceof Error ? err : new Error(String(err)))),
    ).finally(() => {
      if (!current()) return;
      this.#reading = null;
      this.#overdue = false;
      // A late answer: the tick gave up on it, so the next read is paced from now.
      if (!this.#ticking) {
        this.#lastEnded = Date.now();
        this.#schedule(this.#lastStarted);
      }
    });
    const limit = this.settings.readTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), limit)));
    const timedOut = await Promise.race([this.#reading.then(() => false), late]);
    clearTimeout(timer);
    if (!timedOut) return;
    this.#overdue = true;
    this.#error = new BackendError(`no answer from the broker or store within ${limit / 1_000} s (readTimeoutMs)`);
  }

  #schedule(started: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const now = Date.now();
    const idle = now - this.#lastDemand >= IDLE_AFTER_MS;
    const wait = idle ? IDLE_REFRESH_MS - (now - started) : this.settings.refreshMs - (now - started);
    this.#timer = setTimeout(() => void this.#kick(), Math.max(this.#minGapMs, wait));
    this.#timer.unref();
  }

  /** One read of the counts and the registry; applied only while `current()` (not abandoned meanwhile). */
  async #read(current: () => boolean, startedAt: number): Promise<void> {
    const conn = await this.app.connection();
    const control = !!conn.results.coordination;
    const [listed, workers] = control ? await Promise.all([this.app.inspect.queues(), this.app.inspect.workers()]) : [[], []];
    const names = new Set(listed.map((q) => q.queue));
    const extra = await Promise.all(this.settings.queues.filter((q) => !names.has(q)).map(async (q): Promise<QueueInfo> => ({ ...(await conn.broker.stats(q)), paused: false })));
    if (this.#closed || !current()) return;
    const queues = [...listed, ...extra].sort((a, b) => a.queue.localeCompare(b.queue));
    const now = Date.now();
    const deltas = this.#ledger.observe(workers, now);
    for (const d of deltas) this.rates.add(d, now);
    this.rates.retain(new Set([...queues.map((q) => q.queue), ...deltas.map((d) => d.queue)]));
    for (const listener of this.#listeners) listener(deltas);
    // Dated when the read began: a late answer holds counts of then, not of when it landed.
    this.#snapshot = { at: startedAt, control, queues, workers };
  }
}
