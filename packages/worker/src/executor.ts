import { Attempt, runDelivery, type App, type Connection, type Delivery, type TaskEvent } from '@celeriac/core';

/**
 * Runs deliveries with bounded concurrency.
 * 1. Never more than `concurrency` handlers running; `waitForSlot` blocks the fetcher until one
 *    frees. A slot frees when the handler returns, not when its ack lands, so the next fetch
 *    overlaps the acks in flight; deliveries still settling are bounded by `concurrency` too.
 * 2. One Attempt per running delivery (behind `ctx.signal`), aborted on lease loss or hard stop.
 * 3. Tells the worker when it is idle, so a graceful stop can wait for running tasks.
 */
export class Executor {
  readonly #active = new Map<Delivery, Attempt>();
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

  /** Handlers running now. */
  get running(): number {
    return this.#handlers;
  }

  get free(): number {
    return Math.min(this.concurrency - this.#handlers, 2 * this.concurrency - this.#active.size);
  }

  /** Deliveries not yet settled, running or storing their outcome (for lease renewal). */
  deliveries(): Delivery[] {
    return [...this.#active.keys()];
  }

  run(delivery: Delivery): void {
    const attempt = new Attempt(() => {
      this.#handlers--;
      this.#wakeFetcher();
    });
    this.#handlers++;
    this.#active.set(delivery, attempt);
    runDelivery(this.app, this.conn, delivery, { attempt, leaseMs: this.leaseMs, onEvent: this.onEvent })
      .catch((err: unknown) => {
        // A settle that failed (e.g. broker down) leaves the message leased; the lease lapses and it is redelivered.
        this.app.logger.error({ taskId: delivery.message.id, err: String(err) }, 'could not settle task; it will be redelivered when its lease lapses');
      })
      .finally(() => this.#done(delivery));
  }

  abort(delivery: Delivery, reason: Error): void {
    this.#active.get(delivery)?.abort(reason);
  }

  abortAll(reason: Error): void {
    for (const attempt of this.#active.values()) attempt.abort(reason);
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

  /** Resolves true once nothing runs, or false after `timeoutMs`. */
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

  #done(delivery: Delivery): void {
    this.#active.get(delivery)?.handlerDone(); // paths that settle without running a handler
    this.#active.delete(delivery);
    this.#wakeFetcher();
    if (this.#active.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
