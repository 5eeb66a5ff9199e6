import { LeaseLostError, type App, type Connection } from '@celeriac/core';
import type { Executor } from './executor.js';

/**
 * Keeps the leases of running tasks alive with one timer for all of them.
 * 1. Every `leaseMs / 3`, renews every running delivery in one batched broker call.
 * 2. Renews the idempotency-key claims of keyed tasks alongside.
 * 3. Aborts a task whose lease was lost, so its outcome is not recorded twice.
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
    const deliveries = this.executor.deliveries();
    if (deliveries.length === 0) return;
    this.#busy = true;
    try {
      const owned = await this.conn.broker.renew(deliveries, this.leaseMs);
      const claims: Promise<unknown>[] = [];
      deliveries.forEach((d, i) => {
        if (!owned[i]) {
          this.app.logger.warn({ taskId: d.message.id }, 'lease lost while running; aborting this attempt');
          this.executor.abort(d, new LeaseLostError(d.message.id));
        } else if (d.message.idempotencyKey !== null) {
          claims.push(this.conn.results.claimKey({ queue: d.message.queue, key: d.message.idempotencyKey }, d.token, this.leaseMs));
        }
      });
      await Promise.all(claims);
    } catch (err) {
      this.app.logger.warn({ err: String(err) }, 'lease renewal failed; retrying on the next tick');
    } finally {
      this.#busy = false;
    }
  }
}
