import { collectDefaultMetrics, Registry } from 'prom-client';
import { withTimeout, type App, type Logger, type TaskEvent, type TaskMessage } from '@celeriac/core';
import { deadLettersTotal, queuePaused, queueTasks, setQueueDepths, TASK_OUTCOMES, taskDuration, taskRetries, tasksTotal } from './metric-definitions.js';
import { taskLabel } from './task-counts.js';
import type { Worker } from './worker.js';

/** How long a scrape waits for the broker (queue depths) before it answers without them. */
export const SCRAPE_TIMEOUT_MS = 2_000;

export interface WorkerMetrics {
  /** The registry to scrape: `await registry.metrics()`, content type `registry.contentType`. */
  readonly registry: Registry;
  /**
   * Stops observing the worker's task events and removes from `registry` every metric this call
   * put there (Node's process metrics too, if it added them), so a later `workerMetrics` on the
   * same registry starts clean.
   */
  close(): void;
}

type Of<T extends TaskEvent['type']> = Extract<TaskEvent, { type: T }>;

/**
 * A worker's Prometheus metrics (names in metric-definitions.ts), on `registry` (a new one by default).
 * 1. Tasks ended, retries and dead letters by queue and task: read when scraped from the worker's
 *    counts (the same numbers as its registry record, counted once the outcome is stored), so
 *    they cost a task nothing here. Every failed final outcome is a dead letter.
 * 2. Handler run times: a histogram fed by the task events (listeners registered once). Task
 *    names the app does not register are labelled `(unknown)`, as in the counts (task-counts.ts).
 * 3. When scraped: the depths of the worker's queues (`broker.stats`) and whether each is paused
 *    (as the worker last heard). The depth read is bounded by `SCRAPE_TIMEOUT_MS`: a broker that
 *    hangs leaves those gauges out of the scrape (said once in the log), never the scrape. Depths
 *    are facts about a queue, so every worker of a queue exports the same ones: aggregate with
 *    `max by (queue, state)`, not `sum`. Workers online is not here: each worker reading the whole
 *    registry per scrape costs O(N²) for N workers; the dashboard's /metrics exports it.
 * 4. Node's process metrics (prom-client's defaults), unless the registry has them already.
 * A registry holds one worker's metrics: a second worker would register the same names, which
 * prom-client refuses (`close()` the first to reuse the registry).
 */
export async function workerMetrics(worker: Worker, app: App, registry = new Registry(), options: { logger?: Logger; scrapeTimeoutMs?: number } = {}): Promise<WorkerMetrics> {
  const conn = await app.connection();
  const logger = options.logger ?? app.logger;
  const timeoutMs = options.scrapeTimeoutMs ?? SCRAPE_TIMEOUT_MS;
  const before = new Set(registry.getMetricsAsArray().map((m) => m.name));

  tasksTotal(registry, function () {
    this.reset();
    for (const counts of worker.taskCounts) {
      for (const outcome of TASK_OUTCOMES) this.inc({ queue: counts.queue, task: counts.task, outcome }, counts[outcome]);
    }
  });
  taskRetries(registry, function () {
    this.reset();
    for (const { queue, task, retried } of worker.taskCounts) this.inc({ queue, task }, retried);
  });
  deadLettersTotal(registry, function () {
    this.reset();
    for (const { queue, task, failed } of worker.taskCounts) this.inc({ queue, task }, failed);
  });

  const stats = new BoundedRead(() => Promise.all(worker.queues.map((q) => conn.broker.stats(q))), 'the queue depths (broker.stats)', timeoutMs, logger);
  queueTasks(registry, async function () {
    const all = await stats.read();
    this.reset();
    for (const s of all ?? []) setQueueDepths(this, s);
  });
  queuePaused(registry, function () {
    this.reset();
    const paused = new Set(worker.pausedQueues);
    for (const queue of worker.queues) this.set({ queue }, paused.has(queue) ? 1 : 0);
  });

  const duration = taskDuration(registry);
  const observe = (outcome: string, { message, durationMs }: { message: TaskMessage; durationMs: number }) =>
    duration.labels(message.queue, taskLabel(app.tasks, message.task), outcome).observe(durationMs / 1000);
  const onSucceeded = (e: Of<'task:succeeded'>) => observe('succeeded', e);
  const onRetrying = (e: Of<'task:retrying'>) => observe('retried', e);
  // Only a handler that ran has a duration (not an expired, revoked or refused task).
  const onFailed = (e: Of<'task:failed'>) => e.durationMs !== undefined && observe('failed', { message: e.message, durationMs: e.durationMs });
  worker.on('task:succeeded', onSucceeded).on('task:retrying', onRetrying).on('task:failed', onFailed);

  if (!registry.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics({ register: registry });
  // Ours: what this call added. prom-client's process metrics are collected when scraped, so
  // removing them stops their collection (its GC observer and event loop monitor have no off switch).
  const added = registry.getMetricsAsArray().map((m) => m.name).filter((name) => !before.has(name));
  return {
    registry,
    close: () => {
      worker.off('task:succeeded', onSucceeded).off('task:retrying', onRetrying).off('task:failed', onFailed);
      for (const name of added) registry.removeSingleMetric(name);
    },
  };
}

/**
 * A read for a scrape, bounded: null when it fails or takes longer than `timeoutMs` (logged once
 * until it works again). Scrapes that come while a read is still out share it, so a broker that
 * hangs does not pile up a read per scrape.
 */
class BoundedRead<T> {
  #pending: Promise<T> | undefined;
  #failing = false;

  constructor(
    private readonly source: () => Promise<T>,
    private readonly what: string,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  async read(): Promise<T | null> {
    if (!this.#pending) {
      const pending = this.source();
      this.#pending = pending;
      const clear = () => {
        if (this.#pending === pending) this.#pending = undefined;
      };
      pending.then(clear, clear);
    }
    try {
      const value = await withTimeout(this.#pending, this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`));
      if (this.#failing) this.logger.info(`metrics: reading ${this.what} works again`);
      this.#failing = false;
      return value;
    } catch (err) {
      if (!this.#failing) this.logger.warn({ err: String(err) }, `metrics: could not read ${this.what}; scrapes leave those gauges out until it answers`);
      this.#failing = true;
      return null;
    }
  }
}
