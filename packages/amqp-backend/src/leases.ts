import { LeaseLostError, type TaskMessage } from '@celeriac/core';
import type { Message } from 'amqplib';
import type { Link, Session } from './link.js';

/** One delivery held by this process: the unacked AMQP message is the lease. */
export interface Held {
  readonly token: string;
  readonly queue: string;
  readonly message: TaskMessage;
  /** Earlier deliveries of this attempt that died unsettled (see lapses.ts). */
  readonly lapses: number;
  /** The AMQP message to ack; swapped when the delivery is rotated (see Rotator). */
  msg: Message;
  session: Session;
  /** When `msg` was delivered: what RabbitMQ's consumer_timeout measures. */
  since: number;
  leaseUntil: number;
  timer: NodeJS.Timeout | undefined;
  /** Set once a settlement began: the lease can no longer lapse under it. */
  settling: boolean;
  /** Set while a rotation is under way; settlements wait for it. */
  rotating: Promise<void> | undefined;
}

/**
 * The leases of this process.
 * 1. A lease is an unacked delivery on a live channel, fenced by a token (client id, session
 *    generation, delivery tag): after a reconnect every old token is refused with
 *    `LeaseLostError`, and nothing is ever sent with an old tag on a new channel.
 * 2. `leaseMs` is kept here: a lease not renewed in time lapses like the contract says — the
 *    message is given back (nack with requeue) and will come again with a new token. The deadline
 *    is also checked when a renewal or settlement comes: after a blocked event loop the timer has
 *    not fired yet, but the lease is over all the same (a stale owner settles nothing).
 * 3. A lost session ends all its leases at once (RabbitMQ requeued those messages itself).
 */
export class Leases {
  readonly #held = new Map<string, Held>();

  constructor(
    private readonly link: Link,
    private readonly client: string,
  ) {
    link.listen({
      opened: () => {},
      lost: (s) => {
        for (const h of this.#held.values()) if (h.session === s && !h.rotating) this.#drop(h);
      },
    });
  }

  get size(): number {
    return this.#held.size;
  }

  countFor(queue: string): number {
    let n = 0;
    for (const h of this.#held.values()) if (h.queue === queue) n++;
    return n;
  }

  /** Task ids of `queue` leased here now. */
  idsFor(queue: string): Set<string> {
    const ids = new Set<string>();
    for (const h of this.#held.values()) if (h.queue === queue) ids.add(h.message.id);
    return ids;
  }

  values(): IterableIterator<Held> {
    return this.#held.values();
  }

  get(token: string): Held | undefined {
    return this.#held.get(token);
  }

  add(queue: string, message: TaskMessage, msg: Message, session: Session, leaseMs: number, lapses: number): Held {
    const now = Date.now();
    const token = `${this.client}.${session.gen}.${msg.fields.deliveryTag}`;
    const h: Held = { token, queue, message, lapses, msg, session, since: now, leaseUntil: now + leaseMs, timer: undefined, settling: false, rotating: undefined };
    this.#held.set(token, h);
    this.#arm(h, leaseMs);
    return h;
  }

  /** True while the token still owns its message. */
  owns(token: string): boolean {
    const h = this.#held.get(token);
    return h !== undefined && !h.settling && (h.rotating !== undefined || h.session === this.link.current);
  }

  renew(token: string, leaseMs: number): boolean {
    if (!this.owns(token)) return false;
    const h = this.#held.get(token)!;
    if (this.#overdue(h)) return false;
    h.leaseUntil = Date.now() + leaseMs;
    this.#arm(h, leaseMs);
    return true;
  }

  /**
   * Starts settling: from here on the lease cannot lapse. Throws LeaseLostError when the token lost
   * its message. Synchronous unless a rotation is under way (then it waits for it to land).
   */
  begin(token: string, id: string): Held | Promise<Held> {
    const h = this.#held.get(token);
    if (!h || h.settling || this.#overdue(h)) throw new LeaseLostError(id);
    h.settling = true;
    clearTimeout(h.timer);
    if (h.rotating) return h.rotating.then(() => this.#check(h, id));
    return this.#check(h, id);
  }

  #check(h: Held, id: string): Held {
    if (this.#held.get(h.token) !== h || h.session !== this.link.current) {
      this.#held.delete(h.token);
      throw new LeaseLostError(id);
    }
    return h;
  }

  /** Acks the message of a settling delivery; LeaseLostError if its channel died meanwhile. */
  finish(h: Held): void {
    this.#held.delete(h.token);
    if (h.session !== this.link.current) throw new LeaseLostError(h.message.id);
    h.session.acks.ack(h.msg);
  }

  /** Ends a settling delivery without touching AMQP (its settlement failed before the ack). */
  abandon(h: Held): void {
    h.settling = false;
    this.#arm(h, Math.max(0, h.leaseUntil - Date.now()));
  }

  /** Gives up a delivery whose rotation failed: its message is back with RabbitMQ. */
  lose(h: Held): void {
    if (this.#held.get(h.token) === h) this.#drop(h);
  }

  /** True (and the lease made to lapse now) when its deadline passed without its timer firing: the event loop was blocked. */
  #overdue(h: Held): boolean {
    if (Date.now() <= h.leaseUntil) return false;
    this.#lapse(h);
    return true;
  }

  #arm(h: Held, ms: number): void {
    clearTimeout(h.timer);
    h.timer = setTimeout(() => this.#lapse(h), ms);
    h.timer.unref?.();
  }

  #lapse(h: Held): void {
    if (h.settling || this.#held.get(h.token) !== h) return;
    if (h.rotating) {
      // Let the rotation land first, then give the message back.
      void h.rotating.then(() => this.#lapse(h));
      return;
    }
    this.#drop(h);
    if (h.session === this.link.current) h.session.acks.nack(h.msg, true);
  }

  #drop(h: Held): void {
    clearTimeout(h.timer);
    this.#held.delete(h.token);
  }
}
