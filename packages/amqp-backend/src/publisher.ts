import { BackendError } from '@celeriac/core';
import type { Options } from 'amqplib';
import type { Link, Session } from './link.js';

export interface Outgoing {
  /** Queue name: everything goes through the default exchange, straight to a queue. */
  queue: string;
  body: Buffer;
  props: Options.Publish;
  /** Unroutable → rejected (true for everything but replies, whose client may be gone for good). */
  mandatory: boolean;
  /**
   * Epoch ms to give up at, when the caller's own bound started earlier than this publish (an
   * enqueue that first declared a queue): default `timeoutMs` from now. Never later than that.
   */
  deadline?: number;
}

// A class, not `{ ...out, … }`: one hidden class for every pending publish keeps the hot path monomorphic.
class Pending {
  gen = 0;
  returned = false;
  /** Written to a channel at least once: from then on its outcome is unknown until confirmed. */
  sent = false;
  constructor(
    readonly queue: string,
    readonly body: Buffer,
    readonly props: Options.Publish,
    /** Epoch ms after which it is given up: never written (again), rejected with PublishTimeoutError. */
    readonly deadline: number,
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
  ) {}
}

/** The queue did not exist when the message reached the broker (mandatory publish came back). */
export class UnroutableError extends BackendError {
  constructor(readonly queue: string) {
    super(`message to queue "${queue}" was unroutable (the queue does not exist or was deleted)`);
  }
}

/**
 * A publish given up at its deadline. `maybeEnqueued` tells the two cases apart: false = it never
 * left this process (RabbitMQ unreachable the whole time), true = it was written but its confirm
 * never came (the connection died, or the broker is stalled), so RabbitMQ may hold it. Either way
 * this process will not send it again.
 */
export class PublishTimeoutError extends BackendError {
  constructor(
    readonly queue: string,
    readonly timeoutMs: number,
    readonly maybeEnqueued: boolean,
  ) {
    super(
      maybeEnqueued
        ? `RabbitMQ did not confirm a publish to "${queue}" within ${timeoutMs} ms: it may or may not have been enqueued (it will not be sent again)`
        : `could not publish to "${queue}" within ${timeoutMs} ms: RabbitMQ was unreachable; the message was not sent and will not be`,
    );
  }
}

/**
 * Publishes with confirms.
 * 1. Each publish resolves only when the broker confirmed it; a nack or an unroutable (returned)
 *    mandatory message rejects.
 * 2. Unconfirmed messages outlive their session: after a reconnect they are sent again, in order
 *    (at-least-once; a resend the broker had already received is a duplicate with the same task id).
 *    amqplib fails the confirms of a closing channel with "channel closed": that is not a refusal.
 * 3. Gives every publish a deadline (`timeoutMs` after `publish`): past it, the publish is rejected
 *    with PublishTimeoutError and never written or resent afterwards, so a caller that was told
 *    "timed out" is never surprised by a late send. One timer, armed for the earliest deadline.
 * 4. Respects the socket's back-pressure: stops writing until the channel drains.
 */
export class Publisher {
  /** Sent or queued, not yet confirmed; in publish order (a Set keeps insertion order). */
  readonly #pending = new Set<Pending>();
  /** Waiting to be written (back-pressure, or no session yet), oldest first. */
  #queue: Pending[] = [];
  #head = 0;
  #blocked = false;
  #awaitingSession = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When #timer fires (Infinity: not armed); it is armed for the earliest pending deadline. */
  #timerAt = Infinity;

  constructor(
    private readonly link: Link,
    /** How long a publish may stay unconfirmed before it is given up (AmqpOptions.publishTimeoutMs). */
    readonly timeoutMs = 10_000,
  ) {
    link.listen({
      opened: (s) => {
        this.#watchReturns(s);
        this.#blocked = false;
        this.#pump();
      },
      lost: (s) => {
        // Everything the dead channel did not confirm goes out again first, in its original order.
        const resend = [...this.#pending].filter((p) => p.gen === s.gen);
        for (const p of resend) p.gen = 0;
        this.#queue = resend.concat(this.#queue.slice(this.#head));
        this.#head = 0;
        this.#blocked = false;
      },
    });
    if (link.current) this.#watchReturns(link.current);
  }

  #watchReturns(s: Session): void {
    s.pub.on('return', (msg: { fields: { routingKey: string }; properties: { messageId?: string } }) => this.returned(s, msg.fields.routingKey, msg.properties.messageId));
  }

  /** Number of messages sent but not yet confirmed (for tests and stats). */
  get unconfirmed(): number {
    return this.#pending.size;
  }

  publish(out: Outgoing): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const props = out.mandatory ? { ...out.props, mandatory: true } : out.props;
      const bound = Date.now() + this.timeoutMs;
      const p = new Pending(out.queue, out.body, props, out.deadline === undefined ? bound : Math.min(out.deadline, bound), resolve, reject);
      this.#pending.add(p);
      this.#queue.push(p);
      if (p.deadline < this.#timerAt) this.#arm(p.deadline);
      this.#pump();
    });
  }

  /** Writes queued messages until the socket pushes back or the queue is empty. */
  #pump(): void {
    const s = this.link.current;
    if (!s) {
      if (this.#awaitingSession) return;
      this.#awaitingSession = true;
      this.link.session().then(
        () => ((this.#awaitingSession = false), this.#pump()),
        (err: Error) => ((this.#awaitingSession = false), this.failAll(err)),
      );
      return;
    }
    const now = Date.now();
    while (!this.#blocked && this.#head < this.#queue.length) {
      const p = this.#queue[this.#head++]!;
      if (!this.#pending.has(p) || p.gen !== 0) continue;
      if (p.deadline <= now) this.#settle(p, new PublishTimeoutError(p.queue, this.timeoutMs, p.sent));
      else this.#write(s, p);
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
  }

  #write(s: Session, p: Pending): void {
    p.gen = s.gen;
    p.returned = false;
    let ok: boolean;
    try {
      ok = s.pub.publish('', p.queue, p.body, p.props, (err) => {
        if (p.gen !== s.gen) return; // that channel died; the message was (or will be) sent again
        if (!err) return p.returned ? this.#settle(p, new UnroutableError(p.queue)) : this.#settle(p);
        // amqplib fails every unconfirmed callback with "channel closed" *before* the channel's
        // 'close' reaches the Link, which then calls `lost` and queues the message again. Decide
        // after that: if the session is gone by then it was a closing channel, not a broker nack.
        queueMicrotask(() => {
          if (p.gen === s.gen && this.link.current === s) this.#settle(p, new BackendError(`RabbitMQ refused a publish to "${p.queue}": ${String(err.message ?? err)}`));
        });
      });
      p.sent = true;
    } catch {
      // The channel is closing under us: keep this session's generation so `lost` queues it again,
      // and write nothing more on this channel (order is kept: the rest follow it on the next one).
      this.#blocked = true;
      return;
    }
    if (!ok) {
      this.#blocked = true;
      s.pub.once('drain', () => {
        if (this.link.current !== s) return;
        this.#blocked = false;
        this.#pump();
      });
    }
  }

  /** Marks a mandatory message the broker handed back; its confirm follows and rejects it. */
  returned(s: Session, queue: string, messageId: string | undefined): void {
    for (const p of this.#pending) {
      if (p.gen === s.gen && !p.returned && p.queue === queue && p.props.messageId === messageId) {
        p.returned = true;
        return;
      }
    }
  }

  #settle(p: Pending, err?: Error): void {
    if (!this.#pending.delete(p)) return;
    if (this.#pending.size === 0 && this.#timer) {
      // Nothing left to time out: no timer may keep the process alive for a publish long done.
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    if (err) p.reject(err);
    else p.resolve();
  }

  /** (Re)arms the one timer for `at`, the earliest deadline of any pending publish. */
  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      const next = this.#expire();
      if (next < Infinity) this.#arm(next);
    }, Math.max(0, at - Date.now()));
  }

  /**
   * Gives up every publish past its deadline (still queued, or written and unconfirmed) and
   * returns the earliest deadline left. A full scan, but only when the timer fires: about once per
   * `timeoutMs` under steady load, since a timely confirm settles most publishes long before.
   */
  #expire(): number {
    const now = Date.now();
    let next = Infinity;
    for (const p of this.#pending) {
      if (p.deadline <= now) this.#settle(p, new PublishTimeoutError(p.queue, this.timeoutMs, p.sent));
      else if (p.deadline < next) next = p.deadline;
    }
    return next;
  }

  /** Rejects whatever is still unconfirmed (the broker is closing). */
  failAll(err: Error): void {
    for (const p of [...this.#pending]) this.#settle(p, err);
    this.#queue = [];
    this.#head = 0;
  }
}
