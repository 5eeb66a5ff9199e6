import { Attempt, LeaseLostError, runDelivery, type App, type Connection, type Delivery, type TaskEvent } from '@celeriac/core';

/** A delivery in the executor's hands: its attempt, and until when its broker lease is known valid. */
export interface Running {
  readonly attempt: Attempt;
  /** Epoch ms: the send time of the last confirmed renewal (at first: the fetch's arrival) + leaseMs. */
  leaseUntil: number;
}

/**
 * Runs deliveries with bounded concurrency.
 * 1. Never more than `concurrency` handlers running; `waitForSlot` blocks the fetcher until one
 *    frees. A slot frees when the handler returns, not when its ack lands, so the next fetch
 *    overlaps the acks in flight; deliveries still settling are bounded by `concurrency` too.
 * 2. A handler that outlived its attempt (time limit, lease lost) keeps its slot until it really
 *    ends, and keeps its store claims (idempotency key, task) renewed (see `claimHolders`).
 * 3. One Attempt per delivery (behind `ctx.signal`), aborted on lease loss or hard stop; a lost
 *    delivery stops counting as unsettled at once, even if its settlement call never answers.
 * 4. Tells the worker when nothing is left to settle, so a graceful stop can wait for it.
 */
export class Executor {
  /** Deliveries not yet settled. */
  readonly #active = new Map<Delivery, Running>();
  /** Settled deliveries whose handler still runs (it ignored its abort signal). */
  readonly #abandoned = new Map<Delivery, Running>();
  #handlers = 0;
  #slotWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    readonly concurrency: number,
    private readonly leaseMs: number,
    private readonly onEvent: (event: TaskEvent) => void,
  ) {}

  /** Handlers running now (including abandoned ones). */
  get running(): number {
    return this.#handlers;
  }

  get free(): number {
    return Math.min(this.concurrency - this.#handlers, 2 * this.concurrency - this.#active.size);
  }

  /** Deliveries not yet settled, running or storing their outcome, with their lease knowledge (the lease keeper renews them). */
  unsettled(): [Delivery, Running][] {
    return [...this.#active];
  }

  /** Deliveries, settled or not, whose attempt still holds a store claim (the lease keeper renews those). */
  claimHolders(): [Delivery, Running][] {
    const out: [Delivery, Running][] = [];
    for (const map of [this.#active, this.#abandoned]) {
      for (const entry of map) if (entry[1].attempt.claims.some((c) => !c.done)) out.push(entry);
    }
    return out;
  }

  /** Runs `delivery`, whose lease is counted from `leasedAt` (when its fetch answered). */
  run(delivery: Delivery, leasedAt = Date.now()): void {
    const attempt = new Attempt(() => {
      this.#handlers--;
      this.#abandoned.delete(delivery);
      this.#wakeFetcher();
    });
    this.#handlers++;
    this.#active.set(delivery, { attempt, leaseUntil: leasedAt + this.leaseMs });
    runDelivery(this.app, this.conn, delivery, { attempt, leaseMs: this.leaseMs, onEvent: this.onEvent })
      .catch((err: unknown) => {
        // A settle that failed (e.g. broker down) leaves the message leased; the lease lapses and it is redelivered.
        this.app.logger.error({ taskId: delivery.message.id, err: String(err) }, 'could not settle task; it will be redelivered when its lease lapses');
      })
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
    if (running && attempt.handlerRunning) this.#abandoned.set(delivery, running);
    this.#wakeFetcher();
    if (this.#active.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
