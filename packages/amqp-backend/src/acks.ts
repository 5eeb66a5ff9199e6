import type { Channel, Message } from 'amqplib';

/**
 * Acks for one consume channel, coalesced. Tasks finishing in the same tick are acked with one
 * `basic.ack(multiple)` frame instead of one frame (and one socket write) each — the writes were
 * most of a busy worker's CPU.
 * 1. Every delivery that will be acked or nacked later is `track`ed on arrival; tags rise on a
 *    channel, so the oldest tag still held is the first one in arrival order not yet settled.
 * 2. `ack` only marks; a microtask later the marked tags below the oldest held one go out as one
 *    multiple-ack, the rest (behind a long-held delivery) one by one.
 * 3. `nack` goes out at once (a multiple-ack never covers it: RabbitMQ acks only what is unacked).
 * 4. O(1) amortised work per ack whatever is held meanwhile: a flush looks only at the tags marked
 *    since the last one, and the arrival order is compacted once mostly settled (issue 8: one
 *    long task used to make every flush rescan everything acked since it started).
 * Safety rests on (1): a multiple-ack up to tag T settles everything unacked up to T, so anything
 * still held must be tracked, or it could be acked by accident.
 */
export class Acks {
  /** Tracked tags, in arrival (= rising) order, from `#head` on; some settled (not in `#held`). */
  #order: number[] = [];
  #head = 0;
  /** Tracked and not yet acked or nacked. */
  readonly #held = new Set<number>();
  /** Marked for ack since the last flush, in marking order. */
  #marked: number[] = [];
  #scheduled = false;
  /** Tag entries examined so far: the work the coalescer does (tests hold it to O(1) per ack). */
  scans = 0;

  constructor(private readonly ch: Channel) {}

  track(msg: Message): void {
    this.#order.push(msg.fields.deliveryTag);
    this.#held.add(msg.fields.deliveryTag);
  }

  ack(msg: Message): void {
    const tag = msg.fields.deliveryTag;
    if (!this.#held.delete(tag)) return; // settled already: acking twice would close the channel
    this.#marked.push(tag);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Sends the marked acks now instead of a microtask later (before a round trip that must follow them). */
  flush(): void {
    if (this.#scheduled) this.#flush();
  }

  nack(msg: Message, requeue: boolean): void {
    const tag = msg.fields.deliveryTag;
    this.ch.nack(msg, false, requeue);
    this.#held.delete(tag);
  }

  /** The oldest tag still held, or Infinity; skips settled tags once each. */
  #oldestHeld(): number {
    while (this.#head < this.#order.length) {
      this.scans++;
      const tag = this.#order[this.#head]!;
      if (this.#held.has(tag)) return tag;
      this.#head++;
    }
    return Infinity;
  }

  #flush(): void {
    if (!this.#scheduled) return; // flushed early already
    this.#scheduled = false;
    const marked = this.#marked;
    this.#marked = [];
    const oldest = this.#oldestHeld();
    let upTo = 0;
    const single: number[] = [];
    for (const tag of marked) {
      this.scans++;
      if (tag < oldest) upTo = Math.max(upTo, tag);
      else single.push(tag);
    }
    try {
      if (upTo > 0) this.ch.ack({ fields: { deliveryTag: upTo } } as Message, true);
      for (const tag of single) this.ch.ack({ fields: { deliveryTag: tag } } as Message, false);
    } catch {
      // The channel closed: RabbitMQ requeues everything unacked; the session's leases are gone.
    }
    this.#compact();
  }

  /**
   * Drops settled tags from the arrival order: the prefix before `#head` once it is large, and —
   * while an old delivery stays held at the head — the settled tags behind it once they outnumber
   * the held ones. Each rebuild costs its length and at least halves it: O(1) amortised per tag.
   */
  #compact(): void {
    const live = this.#order.length - this.#head;
    if (live > 2 * this.#held.size + 1024) {
      const kept: number[] = [];
      for (let i = this.#head; i < this.#order.length; i++) {
        this.scans++;
        const tag = this.#order[i]!;
        if (this.#held.has(tag)) kept.push(tag);
      }
      this.#order = kept;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
