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

interface Pending extends Outgoing {
  gen: number;
  returned: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
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
  readonly #pending = new Set<Pending>();
  #drained: Promise<void> | undefined;

  constructor(private readonly link: Link) {
    link.listen({
      opened: (s) => this.#resendAll(s),
      lost: (s) => {
        for (const p of this.#pending) if (p.gen === s.gen) p.gen = 0;
      },
    });
  }

  /** Number of messages sent but not yet confirmed (for tests and stats). */
  get unconfirmed(): number {
    return this.#pending.size;
  }

  publish(out: Outgoing): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const p: Pending = { ...out, gen: 0, returned: false, resolve, reject };
      this.#pending.add(p);
      this.link.session().then((s) => this.#send(s, p), (err: Error) => this.#settle(p, err));
    });
  }

  publishAll(outs: readonly Outgoing[]): Promise<void[]> {
    return Promise.all(outs.map((o) => this.publish(o)));
  }

  async #send(s: Session, p: Pending): Promise<void> {
    while (this.#drained) await this.#drained;
    if (this.link.current !== s || !this.#pending.has(p) || p.gen !== 0) return; // resent by #resendAll
    p.gen = s.gen;
    p.returned = false;
    let ok: boolean;
    try {
      ok = s.pub.publish('', p.queue, p.body, { ...p.props, mandatory: p.mandatory }, (err) => {
        if (p.gen !== s.gen) return; // that channel died; the message was (or will be) sent again
        if (err) this.#settle(p, new BackendError(`RabbitMQ did not confirm a publish to "${p.queue}": ${String(err.message ?? err)}`));
        else if (p.returned) this.#settle(p, new UnroutableError(p.queue));
        else this.#settle(p);
      });
    } catch {
      p.gen = 0; // channel closing under us: #resendAll takes it on the next session
      return;
    }
    if (!ok && !this.#drained) {
      this.#drained = new Promise<void>((resolve) => {
        const done = () => {
          this.#drained = undefined;
          s.pub.off('drain', done);
          s.pub.off('close', done);
          resolve();
        };
        s.pub.once('drain', done);
        s.pub.once('close', done);
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

  #resendAll(s: Session): void {
    s.pub.on('return', (msg: { fields: { routingKey: string }; properties: { messageId?: string } }) => this.returned(s, msg.fields.routingKey, msg.properties.messageId));
    for (const p of this.#pending) if (p.gen === 0) void this.#send(s, p);
  }

  #settle(p: Pending, err?: Error): void {
    if (!this.#pending.delete(p)) return;
    if (err) p.reject(err);
    else p.resolve();
  }

  /** Rejects whatever is still unconfirmed (the broker is closing). */
  failAll(err: Error): void {
    for (const p of [...this.#pending]) this.#settle(p, err);
  }
}
