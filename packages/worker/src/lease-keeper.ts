import { LeaseLostError, type App, type Claim, type Connection, type Delivery } from '@celeriac/core';
import type { Executor, Running } from './executor.js';

/**
 * Keeps the leases of running tasks alive, and gives up on them in time.
 * 1. Every `leaseMs / 3`, renews every unsettled delivery in one batched broker call.
 * 2. Renews the store claims (idempotency key, task claim) of handlers still running, even past
 *    their attempt — in a chain of its own, so a stalled store never holds up the broker's
 *    renewals (RabbitMQ broker, Redis store), nor the other way round.
 * 3. Bounds each round by 90% of the renewal period: a renewal that does not answer frees its
 *    chain before the next tick; its answer still counts if it comes later.
 * 4. Knows locally until when each lease holds: the send time of its last confirmed renewal +
 *    `leaseMs` (the server counts from when it ran the call, which is later). Before that passes,
 *    with a safety margin of `leaseMs / 6`, the attempt is aborted with `LeaseLostError`, so a
 *    worker cut off from its broker or store stops (via `ctx.signal`) before anyone else can
 *    start the task. The margin absorbs timer lateness and the fetch's own transit (a delivery's
 *    lease is first counted from when its fetch answered).
 * 5. Aborts an attempt at once when its lease or claim went to someone else — unless its
 *    settlement has begun: a renewal refused then raced the ack (which lands first and ends the
 *    lease), and the settlement's own answer tells whether the lease was really lost.
 */
export class LeaseKeeper {
  #timer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #leasesBusy = false;
  #claimsBusy = false;
  readonly #periodMs: number;
  readonly #roundMs: number;
  readonly #marginMs: number;

  constructor(
    private readonly app: App,
    private readonly conn: Connection,
    private readonly executor: Executor,
    private readonly leaseMs: number,
  ) {
    this.#periodMs = Math.max(10, Math.floor(leaseMs / 3));
    this.#roundMs = Math.max(1, Math.floor(this.#periodMs * 0.9));
    this.#marginMs = Math.floor(leaseMs / 6);
  }

  start(): void {
    this.#timer = setInterval(() => void this.renewNow(), this.#periodMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#watchdog);
  }

  /** One tick of both chains; resolves when both rounds answered or ran out of time. */
  async renewNow(): Promise<void> {
    const rounds = Promise.all([this.#renewLeases(), this.#renewClaims()]);
    this.#arm();
    await rounds;
  }

  async #renewLeases(): Promise<void> {
    const entries = this.executor.unsettled();
    if (this.#leasesBusy || entries.length === 0) return;
    this.#leasesBusy = true;
    const sentAt = Date.now();
    const round = this.conn.broker.renew(
      entries.map(([d]) => d),
      this.leaseMs,
    ).then(
      (owned) =>
        entries.forEach(([d, running], i) => {
          if (owned[i]) running.leaseUntil = Math.max(running.leaseUntil, sentAt + this.leaseMs);
          // Settling (or settled): the renewal raced the ack, whose own answer says whether the lease was lost.
          else if (!running.attempt.settling) this.#lose(d, 'lease lost while running (the message went to another consumer); aborting this attempt');
        }),
      (err: unknown) => this.app.logger.warn({ err: String(err) }, 'lease renewal failed; retrying on the next tick'),
    );
    await this.#bounded(round, 'lease renewal');
    this.#leasesBusy = false;
    this.#arm();
  }

  async #renewClaims(): Promise<void> {
    const held = this.executor.claimHolders().flatMap(([d, r]) => r.attempt.claims.filter((c) => !c.done).map((c) => [d, c] as const));
    if (this.#claimsBusy || held.length === 0) return;
    this.#claimsBusy = true;
    const sentAt = Date.now();
    const round = Promise.all(
      held.map(([d, claim]) =>
        claim.renew(this.leaseMs).then(
          (ok) => {
            if (claim.done) return; // released or stored meanwhile: the answer says nothing
            if (ok) claim.validUntil = Math.max(claim.validUntil, sentAt + this.leaseMs);
            else this.#lose(d, `${claim.kind} claim taken over by another delivery; aborting this attempt`);
          },
          (err: unknown) => this.app.logger.warn({ taskId: d.message.id, err: String(err) }, `${claim.kind} claim renewal failed; retrying on the next tick`),
        ),
      ),
    );
    await this.#bounded(round, 'claim renewal');
    this.#claimsBusy = false;
    this.#arm();
  }

  /** Waits for `round` at most `#roundMs`; a round still out then is logged and left to finish. */
  async #bounded(round: Promise<unknown>, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.#roundMs)));
    const timedOut = await Promise.race([round.then(() => false), late]);
    clearTimeout(timer);
    if (timedOut) this.app.logger.warn({ afterMs: this.#roundMs }, `${what} did not answer in time; the next tick tries again`);
  }

  /** Sets the watchdog for the earliest local deadline (minus the margin) among live attempts. */
  #arm(): void {
    clearTimeout(this.#watchdog);
    let earliest = Infinity;
    for (const [, running] of this.executor.unsettled()) if (!running.attempt.aborted) earliest = Math.min(earliest, running.leaseUntil);
    for (const [, claim] of this.#liveClaims()) earliest = Math.min(earliest, claim.validUntil);
    if (earliest === Infinity) return;
    this.#watchdog = setTimeout(() => this.#expire(), Math.max(0, earliest - this.#marginMs - Date.now()));
  }

  #expire(): void {
    const line = Date.now() + this.#marginMs;
    for (const [d, running] of this.executor.unsettled()) {
      if (!running.attempt.aborted && running.leaseUntil <= line) this.#lose(d, `lease not confirmed since ${this.leaseMs - this.#marginMs} ms; aborting this attempt before it lapses`);
    }
    for (const [d, claim] of this.#liveClaims()) {
      if (claim.validUntil <= line) this.#lose(d, `${claim.kind} claim not confirmed since ${this.leaseMs - this.#marginMs} ms; aborting this attempt before it lapses`);
    }
    this.#arm();
  }

  /** Claims not yet done of attempts not yet aborted. */
  #liveClaims(): [Delivery, Claim][] {
    const live = ([, r]: [Delivery, Running]) => !r.attempt.aborted;
    return this.executor
      .claimHolders()
      .filter(live)
      .flatMap(([d, r]) => r.attempt.claims.filter((c) => !c.done).map((c): [Delivery, Claim] => [d, c]));
  }

  #lose(d: Delivery, why: string): void {
    this.app.logger.warn({ taskId: d.message.id }, why);
    this.executor.abort(d, new LeaseLostError(d.message.id));
  }
}
