import type { Channel, Message } from 'amqplib';

/**
 * Acks for one consume channel, coalesced. Tasks finishing in the same tick are acked with one
 * `basic.ack(multiple)` frame instead of one frame (and one socket write) each — the writes were
 * most of a busy worker's CPU.
 * 1. Every delivery that will be acked or nacked later is `track`ed on arrival; tags rise on a channel.
 * 2. `ack` only marks; a microtask later the longest run of settled tags from the oldest
 *    outstanding one goes out as a single multiple-ack, any other marked tags one by one.
 * 3. `nack` goes out at once (a multiple-ack never covers it: RabbitMQ acks only what is unacked).
 * Safety rests on (1): a multiple-ack up to tag T settles everything unacked up to T, so anything
 * still held must be tracked, or it could be acked by accident.
 */
export class Acks {
  #tags: number[] = [];
  #head = 0;
  /** Tags acked (to send) or already settled individually, waiting for the head to pass them. */
  readonly #done = new Map<number, 'ack' | 'sent'>();
  #scheduled = false;

  constructor(private readonly ch: Channel) {}

  track(msg: Message): void {
    this.#tags.push(msg.fields.deliveryTag);
  }

  ack(msg: Message): void {
    this.#done.set(msg.fields.deliveryTag, 'ack');
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  nack(msg: Message, requeue: boolean): void {
    this.ch.nack(msg, false, requeue);
    this.#done.set(msg.fields.deliveryTag, 'sent');
    this.#advance();
  }

  #flush(): void {
    this.#scheduled = false;
    let upTo = 0;
    for (; this.#head < this.#tags.length; this.#head++) {
      const tag = this.#tags[this.#head]!;
      const state = this.#done.get(tag);
      if (state === undefined) break;
      if (state === 'ack') upTo = tag;
      this.#done.delete(tag);
    }
    try {
      if (upTo > 0) this.ch.ack({ fields: { deliveryTag: upTo } } as Message, true);
      for (const [tag, state] of this.#done) {
        if (state !== 'ack') continue;
        this.ch.ack({ fields: { deliveryTag: tag } } as Message, false);
        this.#done.set(tag, 'sent');
      }
    } catch {
      // The channel closed: RabbitMQ requeues everything unacked; the session's leases are gone.
    }
    this.#compact();
  }

  #advance(): void {
    for (; this.#head < this.#tags.length; this.#head++) {
      const tag = this.#tags[this.#head]!;
      if (this.#done.get(tag) !== 'sent') break;
      this.#done.delete(tag);
    }
    this.#compact();
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#tags.length) {
      this.#tags = this.#tags.slice(this.#head);
      this.#head = 0;
    }
  }
}
