import { Attempt, LeaseLostError, runDelivery, type App, type Connection, type Delivery, type Logger, type RunOptions, type TaskEvent } from '@celeriac/core';
import { TaskTally } from './task-counts.js';

/** A delivery in the executor's hands: its attempt, and until when its broker lease is known valid. */
export interface Running {
  readonly attempt: Attempt;
  /** Epoch ms when the executor took the delivery (for the worker registry). */
  readonly startedAt: number;
  /** Epoch ms: the send time of the last confirmed renewal (at first: the fetch's arrival) + leaseMs. */
  leaseUntil: number;
  /** Once abandoned (settled while its handler runs on): until when its store claims are still renewed. */
  claimsUntil?: number;
  /** Set when that time passed: its claims are left to lapse. */
  claimsDropped?: boolean;
}

/** Claims of an abandoned handler of a task with no time limit are renewed for this many leases, then left to lapse. */
export const ABANDONED_CLAIM_LEASES = 10;

/**
 * Lapses that make a delivery a suspect. Two, not one: a worker SIGKILLed from outside leaves a
 * lapse on every task it ran, and running all of those alone would stall a fleet under restarts;
 * a task that died twice is the likely culprit, and its bystanders never die a third time.
 */
export const SUSPECT_LAPSES = 2;


/**
 * Runs deliveries with bounded concurrency.
 * 1. Never more than `concurrency` handlers running; `waitForSlot` blocks the fetcher until one
 *    frees. A slot frees when the handler returns, not when its ack lands, so the next fetch
 *    overlaps the acks in flight; deliveries still settling are bounded by `concurrency` too.
 * 2. A handler that outlived its attempt (time limit, lease lost) keeps its slot until it really
 *    ends, and keeps its store claims (idempotency key, task) renewed (see `claimHolders`) — for a
 *    bounded time: its task's `timeoutMs` more (2 × timeoutMs from its start when its time limit
 *    ended it) but at least one leaseMs, or `ABANDONED_CLAIM_LEASES` × leaseMs when it has none. A handler that never ends
 *    then lets its claims lapse (logged), so its key's retries are not held off forever.
 * 3. One Attempt per delivery (behind `ctx.signal`), aborted on lease loss or hard stop; a lost
 *    delivery stops counting as unsettled at once, even if its settlement call never answers.
 * 4. Tells the worker when nothing is left to settle, so a graceful stop can wait for it.
 * 5. Runs a suspect (a delivery that already died unsettled SUSPECT_LAPSES times) alone: it waits
 *    until no unsettled handler runs, and nothing else starts until it ends, so a task that kills
 *    its process takes no innocent task down with it. One suspect at a time: another one fetched
 *    meanwhile is given back at once (a release: no lapse) for another worker, rather than held
 *    where it could die unstarted. The wait and the solitude each last at most `leaseMs` (a task
 *    that kills its worker does so quickly; a long one must not stall the worker).
 * 6. Counts each settled delivery's outcome by queue and task (`tally`: the registry record's and
 *    the metrics' counts).
 */
export class Executor {
  /** Deliveries not yet settled. */
  readonly #active = new Map<Delivery, Running>();
  /** Settled deliveries whose handler still runs (it ignored its abort signal). */
  readonly #abandoned = new Map<Delivery, Running>();
  #handlers = 0;
  /** Suspects waiting for the executor to be empty, in arrival order (their leases are renewed meanwhile). */
  readonly #suspects: Delivery[] = [];
  /** The suspect running now: nothing else starts until it settles or its handler ends. */
  #suspect: Delivery | undefined;
  /** Ends a suspect's wait for the others after `leaseMs` (one timer for the head of the line). */
  #suspectTimer: NodeJS.Timeout | undefined;
  /** Told when a handler starts (the worker registry writes soon after). */
  onStart: () => void = () => {};
  /** The worker's view of revocations (its ControlWatcher); none by default. */
  revoked: NonNullable<RunOptions['revoked']> = new Map();
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    readonly concurrency: number,
    private readonly leaseMs: number,
    private readonly onEvent: (event: TaskEvent) => void,
    /** Where the tasks' `ctx.log` writes (the worker's logger). */
    private readonly logger: Logger = app.logger,
    /** Who runs the tasks (the worker's registry id, written into their result records) and where their outcomes are counted. */
    private readonly worker: { id?: string; tally: TaskTally } = { tally: new TaskTally(app.tasks) },
  ) {}

  /** What ended here (outcome stored), by queue and task: for the worker registry and metrics, counted without events. */
  get tally(): TaskTally {
    return this.worker.tally;
  }

  /** Handlers running now (including abandoned ones). */
  get running(): number {
    return this.#handlers;
  }

  get free(): number {
    if (this.#suspects.length > 0 || this.#suspect) return 0;
    return Math.min(this.concurrency - this.#handlers, 2 * this.concurrency - this.#active.size);
  }

  /** Deliveries not yet settled, running or storing their outcome, with their lease knowledge (the lease keeper renews them). */
  unsettled(): [Delivery, Running][] {
    return [...this.#active];
  }

  /** Deliveries, settled or not, whose attempt still holds a store claim (the lease keeper renews those). */
  claimHolders(): [Delivery, Running][] {
    const out: [Delivery, Running][] = [];
    const now = Date.now();
    for (const map of [this.#active, this.#abandoned]) {
      for (const entry of map) {
        if (!entry[1].attempt.claims.some((c) => !c.done)) continue;
        if (map === this.#abandoned && now > entry[1].claimsUntil!) {
          this.#dropClaims(entry);
          continue;
        }
        out.push(entry);
      }
    }
    return out;
  }

  /** An abandoned handler ran past its bound: its claims are no longer renewed (they lapse with their lease). */
  #dropClaims([delivery, running]: [Delivery, Running]): void {
    if (running.claimsDropped) return;
    running.claimsDropped = true;
    this.logger.warn(
      { taskId: delivery.message.id },
      'a handler that ignored its abort signal still runs past its bound; its store claims (idempotency key, task) are no longer renewed and lapse, so another delivery may run the task',
    );
  }

  /** Runs `delivery`, whose lease is counted from `leasedAt` (when its fetch answered); a suspect waits its turn alone. */
  run(delivery: Delivery, leasedAt = Date.now()): void {
    const suspect = delivery.lapses >= SUSPECT_LAPSES;
    const attempt = new Attempt(() => {
      this.#handlers--;
      if (this.#suspect === delivery) this.#endSuspect();
      this.#abandoned.delete(delivery);
      this.#startSuspect();
      this.#wakeFetcher();
    });
    if (suspect && (this.#suspect || this.#suspects.length > 0)) {
      // Given back at once, unrun (a release: no lapse), with no claim taken: for another worker.
      void delivery.release().catch((err: unknown) => this.logger.warn({ taskId: delivery.message.id, err: String(err) }, 'could not give back a second suspect; it comes back when its lease lapses'));
      return;
    }
    this.#active.set(delivery, { attempt, startedAt: Date.now(), leaseUntil: leasedAt + this.leaseMs });
    if (!suspect) return this.#start(delivery, attempt);
    this.#suspects.push(delivery);
    this.#startSuspect();
  }

  #startSuspect(force = false): void {
    if (this.#suspect || this.#suspects.length === 0) return;
    // Settled handlers still running (they ignored their abort) cannot be harmed: their outcome is stored.
    if (!force && this.#handlers - this.#abandoned.size > 0) {
      this.#suspectTimer ??= setTimeout(() => {
        this.#suspectTimer = undefined;
        this.#startSuspect(true);
      }, this.leaseMs);
      return;
    }
    clearTimeout(this.#suspectTimer);
    const next = this.#suspects.shift()!;
    this.#suspect = next;
    this.#suspectTimer = setTimeout(() => {
      this.#suspectTimer = undefined;
      if (this.#suspect === next) this.#suspect = undefined;
      this.#startSuspect();
      this.#wakeFetcher();
    }, this.leaseMs);
    this.#start(next, this.#active.get(next)!.attempt);
  }

  #endSuspect(): void {
    this.#suspect = undefined;
    clearTimeout(this.#suspectTimer);
    this.#suspectTimer = undefined;
  }

  #start(delivery: Delivery, attempt: Attempt): void {
    this.#handlers++;
    this.onStart();
    const { queue, task } = delivery.message;
    runDelivery(this.app, this.conn, delivery, { attempt, leaseMs: this.leaseMs, onEvent: this.onEvent, revoked: this.revoked, logger: this.logger, worker: this.worker.id })
      .then(
        (outcome) => this.worker.tally.count(queue, task, outcome),
        (err: unknown) => {
          // A settle that failed (e.g. broker down) leaves the message leased; the lease lapses and it is redelivered.
          this.logger.error({ taskId: delivery.message.id, err: String(err) }, 'could not settle task; it will be redelivered when its lease lapses');
        },
      )
      .finally(() => this.#done(delivery, attempt));
  }

  /**
   * Aborts a delivery's attempt. A lost lease also ends the wait for its settlement: one stuck on
   * a partitioned backend must not hold a slot forever (whatever it does later is fenced).
   */
  abort(delivery: Delivery, reason: Error): void {
    const active = this.#active.get(delivery);
    if (!active) return this.#abandoned.get(delivery)?.attempt.abort(reason);
    active.attempt.abort(reason);
    if (reason instanceof LeaseLostError) this.#done(delivery, active.attempt);
  }

  abortAll(reason: Error): void {
    for (const { attempt } of this.#active.values()) attempt.abort(reason);
    // Suspects still waiting start now, already aborted: each is given back without running.
    clearTimeout(this.#suspectTimer);
    for (const d of this.#suspects.splice(0)) this.#start(d, this.#active.get(d)!.attempt);
  }

  /** Resolves when a slot is free, or at once when `signal` aborts. */
  waitForSlot(signal: AbortSignal): Promise<void> {
    if (this.free > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        this.#slotWaiters = this.#slotWaiters.filter((w) => w !== done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      this.#slotWaiters.push(done);
    });
  }

  /** Resolves true once nothing is left to settle, or false after `timeoutMs`. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.#active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  #wakeFetcher(): void {
    if (this.free > 0) this.#slotWaiters.shift()?.();
  }

  #done(delivery: Delivery, attempt: Attempt): void {
    const running = this.#active.get(delivery);
    this.#active.delete(delivery);
    // A settled suspect frees the line even if its handler runs on (liveness over isolation).
    if (this.#suspect === delivery) this.#endSuspect();
    const waiting = this.#suspects.indexOf(delivery);
    if (waiting >= 0) {
      // Lost its lease before its turn: it never started, so it has no handler to outlive, and the
      // wait timer armed for it must not cut the next suspect's wait short.
      this.#suspects.splice(waiting, 1);
      if (!this.#suspect) {
        clearTimeout(this.#suspectTimer);
        this.#suspectTimer = undefined;
      }
    }
    if (running && attempt.handlerRunning && waiting < 0) {
      const timeoutMs = this.app.getTask(delivery.message.task)?.options.timeoutMs;
      // At least one lease: a claim is renewed a lease at a time, so a shorter hold would end at
      // a random point of the last renewed lease instead of where the rule says.
      running.claimsUntil = Date.now() + (timeoutMs === undefined ? ABANDONED_CLAIM_LEASES * this.leaseMs : Math.max(timeoutMs, this.leaseMs));
      this.#abandoned.set(delivery, running);
    }
    this.#startSuspect(); // after the line above: a suspect never waits for a settled handler
    this.#wakeFetcher();
    if (this.#active.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
