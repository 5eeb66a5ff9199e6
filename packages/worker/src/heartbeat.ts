import { hostname } from 'node:os';
import { GLOBAL_SCOPE, HEARTBEAT_MS, REGISTRY, WORKER_TTL_MS, withTimeout, type App, type Coordination, type WorkerInfo } from '@celeriac/core';
import type { Executor } from './executor.js';
import { VERSION } from './version.js';

/** How soon after a task starts the registry hears of it (one write for all that start meanwhile). */
const SOON_MS = 200;

/**
 * The worker's record in the registry (`app.inspect.workers()`).
 * 1. Written at start and every `HEARTBEAT_MS` with a TTL of three heartbeats, so a killed worker
 *    drops out within three heartbeats; a stopped one removes its record at once.
 * 2. Carries what an operator asks first: host, pid, queues, concurrency, the tasks running now,
 *    counts of tasks processed and failed, and those counts by queue, task and outcome (the
 *    dashboard's rates and metrics).
 * 3. Also written shortly after tasks start (`soon`, coalesced), so a running task shows at once.
 * 4. Every write is bounded (one heartbeat); failures are logged once, recovery too. None where
 *    the store keeps no coordination state (RabbitMQ alone).
 */
export class Heartbeat {
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #failing = false;
  #stopped = false;
  /** The write under way, which a stop waits for before it removes the record. */
  #writing: Promise<void> = Promise.resolve();

  constructor(
    /** The worker's id in the registry. */
    readonly id: string,
    private readonly app: App,
    private readonly coordination: Coordination | null,
    private readonly executor: Executor,
    private readonly queues: readonly string[],
  ) {}

  async start(): Promise<void> {
    if (!this.coordination) return;
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), HEARTBEAT_MS);
    this.#timer.unref?.();
  }

  /**
   * A write shortly after a task starts (coalesced: at most one per `SOON_MS`), so the registry
   * shows a running task within a fraction of a second, not a heartbeat later.
   */
  soon(): void {
    if (!this.coordination || this.#soon || this.#timer === undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.#beat();
    }, SOON_MS);
    this.#soon.unref?.();
  }

  /** Stops beating and removes the record (bounded), so the worker leaves the registry at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#timer = undefined;
    await this.#writing; // a write landing after the removal would bring the record back
    if (!this.coordination) return;
    const removal = this.coordination.deleteRecord({ scope: GLOBAL_SCOPE, kind: REGISTRY.workers, id: this.id });
    await withTimeout(removal, HEARTBEAT_MS, () => new Error('timed out')).catch((err: unknown) =>
      this.app.logger.warn({ worker: this.id, err: String(err) }, 'could not remove this worker from the registry; it drops out within three heartbeats'),
    );
  }

  info(now = Date.now()): WorkerInfo {
    const active = this.executor.unsettled().map(([d, r]) => ({ id: d.message.id, task: d.message.task, queue: d.message.queue, startedAt: r.startedAt }));
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      queues: [...this.queues],
      concurrency: this.executor.concurrency,
      active,
      processed: this.executor.tally.processed,
      failed: this.executor.tally.failed,
      counts: this.executor.tally.list(),
      startedAt: this.#startedAt,
      lastSeen: now,
      version: VERSION,
    };
  }

  #beat(): Promise<void> {
    if (this.#stopped) return this.#writing;
    return (this.#writing = this.#write());
  }

  async #write(): Promise<void> {
    const write = this.coordination!.putRecord({ scope: GLOBAL_SCOPE, kind: REGISTRY.workers, id: this.id }, this.info(), WORKER_TTL_MS);
    try {
      await withTimeout(write, HEARTBEAT_MS, () => new Error(`the store did not answer within ${HEARTBEAT_MS} ms`));
      if (this.#failing) this.app.logger.info({ worker: this.id }, 'worker registry heartbeat written again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.app.logger.warn({ worker: this.id, err: String(err) }, 'could not write the worker registry heartbeat; retrying every heartbeat');
      this.#failing = true;
    }
  }
}
