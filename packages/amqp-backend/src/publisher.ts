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
}

// A class, not `{ ...out, … }`: one hidden class for every pending publish keeps the hot path monomorphic.
class Pending {
  gen = 0;
  returned = false;
  constructor(
    readonly queue: string,
    readonly body: Buffer,
    readonly props: Options.Publish,
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
 * Publishes with confirms.
 * 1. Each publish resolves only when the broker confirmed it; a nack or an unroutable (returned)
 *    mandatory message rejects.
 * 2. Unconfirmed messages outlive their session: after a reconnect they are sent again, in order
 *    (at-least-once; duplicates are absorbed by task id and idempotency rules downstream).
 * 3. Respects the socket's back-pressure: stops writing until the channel drains.
 */
export class Publisher {
  /** Sent or queued, not yet confirmed; in publish order (a Set keeps insertion order). */
  readonly #pending = new Set<Pending>();
  /** Waiting to be written (back-pressure, or no session yet), oldest first. */
  #queue: Pending[] = [];
  #head = 0;
  #blocked = false;
  #awaitingSession = false;

  constructor(private readonly link: Link) {
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
      const p = new Pending(out.queue, out.body, out.mandatory ? { ...out.props, mandatory: true } : out.props, resolve, reject);
      this.#pending.add(p);
      this.#queue.push(p);
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
    while (!this.#blocked && this.#head < this.#queue.length) {
      const p = this.#queue[this.#head++]!;
      if (this.#pending.has(p) && p.gen === 0) this.#write(s, p);
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
        if (err) this.#settle(p, new BackendError(`RabbitMQ did not confirm a publish to "${p.queue}": ${String(err.message ?? err)}`));
        else if (p.returned) this.#settle(p, new UnroutableError(p.queue));
        else this.#settle(p);
      });
    } catch {
      p.gen = 0; // the channel is closing under us: `lost` queues it again for the next session
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
    if (err) p.reject(err);
    else p.resolve();
  }

  /** Rejects whatever is still unconfirmed (the broker is closing). */
  failAll(err: Error): void {
    for (const p of [...this.#pending]) this.#settle(p, err);
    this.#queue = [];
    this.#head = 0;
  }
}
