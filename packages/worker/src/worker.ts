import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CeleriacError, CONTROL_POLL_MS, noteQueues, parseOptions, queueNamePattern, TaskRevokedError, type App, type ControlState, type Logger, type TaskCounts, type TaskEvent } from '@celeriac/core';
import { ControlWatcher } from './control-watcher.js';
import { Heartbeat } from './heartbeat.js';
import { Executor } from './executor.js';
import { Fetcher } from './fetcher.js';
import { LeaseKeeper } from './lease-keeper.js';
import { Scheduler } from './scheduler.js';
import { TaskTally } from './task-counts.js';

const workerOptionsSchema = z
  .object({
    queues: z.array(z.string().regex(queueNamePattern, 'must be a valid queue name (A–Z a–z 0–9 _ . -)')).min(1).optional(),
    concurrency: z.number().int().min(1).max(10_000).default(10),
    leaseMs: z.number().int().min(100).default(30_000),
    shutdownGraceMs: z.number().int().min(0).default(30_000),
    blockMs: z.number().int().min(10).default(5_000),
    handleSignals: z.boolean().default(false),
    /** Also run the scheduler (beat) in this worker; safe on every worker, see Scheduler. */
    beat: z.boolean().default(false),
  })
  .strict();

export type WorkerOptions = z.input<typeof workerOptionsSchema> & { logger?: Logger };

type Of<T extends TaskEvent['type']> = Extract<TaskEvent, { type: T }>;
export interface WorkerEvents {
  'task:started': [Of<'task:started'>];
  'task:succeeded': [Of<'task:succeeded'>];
  'task:retrying': [Of<'task:retrying'>];
  'task:failed': [Of<'task:failed'>];
  /** A broker error the worker is recovering from (it keeps going). */
  'worker:error': [Error];
  'worker:stopped': [];
}

/** Aborts the running tasks revoked with `terminate`: each ends `revoked`, never retried. */
function terminateRevoked(executor: Executor, state: ControlState): void {
  if (state.revoked.size === 0) return;
  for (const [delivery] of executor.unsettled()) {
    const { id, queue } = delivery.message;
    const revocation = state.revoked.get(id);
    if (revocation?.terminate && (revocation.queue === null || revocation.queue === queue)) executor.abort(delivery, new TaskRevokedError(id));
  }
}

/** Aborts tasks still running when a stop runs out of grace; they go back to the queue. */
class WorkerStoppedError extends CeleriacError {
  constructor() {
    super('BACKEND', 'worker stopped before the task finished; it was returned to the queue');
  }
}

/**
 * A worker process's runtime.
 * 1. Connects the app, then runs the fetcher, the executor and the lease keeper.
 * 2. Emits typed task events.
 * 3. Stops gracefully: no more fetching, running tasks finish within the grace period, the rest go back.
 * 4. With `handleSignals`, SIGTERM/SIGINT stop gracefully; a second signal stops at once.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly options: z.output<typeof workerOptionsSchema>;
  /** This worker's id in the registry (`app.inspect.workers()`), also written into the result records of the tasks it ran. */
  readonly id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
  readonly #tally: TaskTally;
  readonly #app: App;
  readonly #logger: Logger;
  #parts: { executor: Executor; fetcher: Fetcher; leases: LeaseKeeper; scheduler: Scheduler | null; control: ControlWatcher; heartbeat: Heartbeat } | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #onSignal = (signal: NodeJS.Signals) => this.#signal(signal);

  constructor(app: App, options: WorkerOptions = {}) {
    super();
    const { logger, ...rest } = options;
    this.options = parseOptions(workerOptionsSchema, rest, 'worker options');
    this.#app = app;
    this.#tally = new TaskTally(app.tasks);
    this.#logger = logger ?? app.logger;
  }

  get queues(): string[] {
    return this.options.queues ?? this.#app.queues;
  }

  /** The queues this worker is told are paused (`app.control.pause`), as of its last control poll. */
  get pausedQueues(): string[] {
    const paused = this.#parts?.control.state.paused;
    return paused ? this.queues.filter((q) => paused.has(q)) : [];
  }

  /** What this worker ended, by queue and task (counts only grow); the same numbers as its registry record's `counts`. */
  get taskCounts(): TaskCounts[] {
    return this.#tally.list();
  }

  /** Tasks running right now. */
  get running(): number {
    return this.#parts?.executor.running ?? 0;
  }

  /** Connects and starts fetching. Calling it again (or while it runs) joins the same start. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const conn = await this.#app.connection();
    if (this.#stopping) return; // stopped while connecting: start nothing
    const { concurrency, leaseMs, blockMs } = this.options;
    const executor = new Executor(this.#app, conn, concurrency, leaseMs, (e) => this.#emitSafely(e.type, e), this.#logger, { id: this.id, tally: this.#tally });
    const control = new ControlWatcher(this.#app, conn, {
      pollMs: CONTROL_POLL_MS,
      boundMs: leaseMs,
      onChange: (state) => {
        executor.revoked = state.revoked;
        terminateRevoked(executor, state);
      },
    });
    const fetcher = new Fetcher(this.#app, conn, executor, {
      queues: this.queues,
      leaseMs,
      blockMs,
      onError: (err) => this.#emitSafely('worker:error', err),
      logger: this.#logger,
      paused: () => control.state.paused,
      pausePollMs: CONTROL_POLL_MS,
    });
    const leases = new LeaseKeeper(this.#app, conn, executor, leaseMs);
    const scheduler = this.options.beat ? new Scheduler(this.#app, { logger: this.#logger }) : null;
    const heartbeat = new Heartbeat(this.id, this.#app, conn.results.coordination, executor, this.queues);
    executor.onStart = () => heartbeat.soon();
    this.#parts = { executor, fetcher, leases, scheduler, control, heartbeat };
    // Listening before anything runs: a signal during the rest of the start stops gracefully
    // (the stop waits for the start), instead of killing a process that may hold tasks.
    if (this.options.handleSignals) for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, this.#onSignal);
    noteQueues(this.#app, conn.results.coordination, this.queues);
    await Promise.all([control.start(), heartbeat.start()]); // pauses and revocations apply from the first fetch
    if (this.#stopping) return;
    leases.start();
    fetcher.start();
    await scheduler?.start();
    this.#logger.info({ queues: this.queues, concurrency }, 'worker started');
  }

  /**
   * Stops fetching, waits up to `graceMs` (default `shutdownGraceMs`) for running tasks, then
   * returns the unfinished ones to the queue. Safe to call more than once, and during `start()`.
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.graceMs ?? this.options.shutdownGraceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    await this.#starting?.catch(() => {});
    const parts = this.#parts;
    if (parts) {
      await Promise.all([parts.scheduler?.stop(), parts.fetcher.stop()]);
      if (!(await parts.executor.waitIdle(graceMs))) {
        this.#logger.warn({ running: parts.executor.running }, 'grace period over; returning unfinished tasks to the queue');
        parts.executor.abortAll(new WorkerStoppedError());
        await parts.executor.waitIdle(30_000);
      }
      parts.leases.stop();
      parts.control.stop();
      await parts.heartbeat.stop();
    }
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.off(s, this.#onSignal);
    this.#logger.info('worker stopped');
    this.#emitSafely('worker:stopped');
  }

  /** Emits an event; a listener that throws is logged, never allowed to break the worker. */
  #emitSafely<K extends keyof WorkerEvents>(type: K, ...args: WorkerEvents[K] | [unknown]): void {
    try {
      (this.emit as (t: string, ...a: unknown[]) => boolean)(type, ...args);
    } catch (err) {
      this.#logger.error({ event: type, err: String(err) }, 'a worker event listener threw');
    }
  }

  #signal(signal: NodeJS.Signals): void {
    if (!this.#stopping) {
      this.#logger.info({ signal }, 'stopping gracefully; send the signal again to stop at once');
      void this.stop();
    } else {
      this.#logger.warn({ signal }, 'stopping at once; unfinished tasks go back to the queue');
      this.#parts?.executor.abortAll(new WorkerStoppedError());
    }
  }
}
