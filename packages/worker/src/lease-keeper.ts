import { LeaseLostError, type App, type Connection } from '@celeriac/core';
import type { Executor } from './executor.js';

/**
 * Keeps the leases of running tasks alive with one timer for all of them.
 * 1. Every `leaseMs / 3`, renews every unsettled delivery in one batched broker call.
 * 2. Renews the idempotency-key claims of keyed handlers still running (even past their attempt).
 * 3. Aborts an attempt whose lease or key claim went to someone else.
 */
export class LeaseKeeper {
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    private readonly executor: Executor,
    private readonly leaseMs: number,
  ) {}

  start(): void {
    this.#timer = setInterval(() => void this.renewNow(), Math.max(10, Math.floor(this.leaseMs / 3)));
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async renewNow(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const deliveries = this.executor.deliveries();
      const owned = deliveries.length > 0 ? await this.conn.broker.renew(deliveries, this.leaseMs) : [];
      deliveries.forEach((d, i) => {
        if (owned[i]) return;
        this.app.logger.warn({ taskId: d.message.id }, 'lease lost while running; aborting this attempt');
        this.executor.abort(d, new LeaseLostError(d.message.id));
      });
      // Listed after the renew returned: a handler that ended meanwhile has released its key
      // (or will, after this claim on the same connection), so a released key is not re-taken.
      await Promise.all(
        this.executor.keyedHandlers().map(async (d) => {
          const claim = await this.conn.results.claimKey({ queue: d.message.queue, key: d.message.idempotencyKey! }, d.token, this.leaseMs);
          if (claim.status !== 'acquired') {
            this.app.logger.warn({ taskId: d.message.id }, 'idempotency key taken over by another delivery; aborting this attempt');
            this.executor.abort(d, new LeaseLostError(d.message.id));
          }
        }),
      );
    } catch (err) {
      this.app.logger.warn({ err: String(err) }, 'lease renewal failed; retrying on the next tick');
    } finally {
      this.#busy = false;
    }
  }
}
