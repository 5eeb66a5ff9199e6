import { BackendError, HEARTBEAT_MS, withTimeout, type App, type QueueInfo, type WorkerInfo } from '@celeriac/core';
import type { Series } from './api.js';
import type { DashboardSettings } from './options.js';
import { CountsLedger, RateSeries, type CountsDelta } from './rates.js';
import { HttpError } from './respond.js';

/** How long one read of the queues and the registry may take before the sampler gives up on it. */
export const READ_TIMEOUT_MS = 2_000;

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
 *    `options.queues`) and the worker registry, bounded by `READ_TIMEOUT_MS`; one read at a time.
 * 2. Turns the workers' counts into rate series and tells `onDeltas` (the metrics) of each delta.
 * 3. Keeps the latest snapshot; after a failed read, `current()` rejects with the reason (503)
 *    until a read succeeds again.
 */
export class Sampler {
  readonly rates: RateSeries;
  readonly #ledger: CountsLedger;
  readonly #listeners: ((deltas: readonly CountsDelta[]) => void)[] = [];
  #snapshot: Snapshot | null = null;
  #error: Error | null = null;
  #first: Promise<void>;
  #reading: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly app: App,
    private readonly settings: DashboardSettings,
    now = Date.now(),
  ) {
    this.rates = new RateSeries(settings.historyMs, now);
    this.#ledger = new CountsLedger(now);
    this.#first = this.#tick();
  }

  onDeltas(listener: (deltas: readonly CountsDelta[]) => void): void {
    this.#listeners.push(listener);
  }

  /** The latest snapshot (after the first read); rejects with a 503 while reads fail. */
  async current(): Promise<Snapshot> {
    await this.#first;
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

  async #tick(): Promise<void> {
    const started = Date.now();
    // A read still hanging is not doubled up on: its timeout already reported it.
    this.#reading ??= this.#read().finally(() => (this.#reading = null));
    try {
      await withTimeout(this.#reading, READ_TIMEOUT_MS, () => new BackendError(`no answer from the broker or store within ${READ_TIMEOUT_MS / 1_000} s`));
      this.#error = null;
    } catch (err) {
      this.#error = err instanceof Error ? err : new Error(String(err));
    }
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.#tick(), Math.max(0, this.settings.refreshMs - (Date.now() - started)));
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    const conn = await this.app.connection();
    const control = !!conn.results.coordination;
    const [listed, workers] = control ? await Promise.all([this.app.inspect.queues(), this.app.inspect.workers()]) : [[], []];
    const names = new Set(listed.map((q) => q.queue));
    const extra = await Promise.all(this.settings.queues.filter((q) => !names.has(q)).map(async (q): Promise<QueueInfo> => ({ ...(await conn.broker.stats(q)), paused: false })));
    const queues = [...listed, ...extra].sort((a, b) => a.queue.localeCompare(b.queue));
    const at = Date.now();
    const deltas = this.#ledger.observe(workers, at);
    for (const d of deltas) this.rates.add(d, at);
    this.rates.retain(new Set([...queues.map((q) => q.queue), ...deltas.map((d) => d.queue)]));
    for (const listener of this.#listeners) listener(deltas);
    this.#snapshot = { at, control, queues, workers };
  }
}
