import type { Logger } from '@celeriac/core';
import type { ConsumeMessage } from 'amqplib';
import type { Link, Session } from './link.js';
import type { Topology } from './topology.js';
import { workQueue } from './names.js';

/** A message pushed by the broker and not yet handed to a caller of `fetch`. */
export interface Arrival {
  queue: string;
  msg: ConsumeMessage;
  session: Session;
  consumer?: Consumer;
}

/** How long a consumer nobody fetches from stays subscribed (keeps a busy worker's consumer, frees an idle one's prefetch). */
const IDLE_CANCEL_MS = 1_000;

export interface Consumer {
  tag: string;
  prefetch: number;
  session: Session;
}

/**
 * The receiving side of the consume channel.
 * 1. One consumer per work queue, subscribed on first fetch, with prefetch = the largest `max`
 *    asked for (the worker asks for its free slots, so prefetch is bounded by its concurrency);
 *    a larger `max` re-subscribes (per-consumer QoS only applies to new consumers).
 * 2. Buffers what the broker pushes, and wakes blocked fetches — no polling.
 * 3. A consumer with no fetch waiting on it for a while is cancelled and its buffer given back,
 *    so an idle process does not sit on messages other consumers could run. Given back means
 *    published again and acked (`giveBack`), not nacked: RabbitMQ would mark a nacked message
 *    redelivered, which counts as a death of its task (see lapses.ts).
 * 4. A consumer cancelled by the broker (amqplib delivers `null`: queue deleted, failover) is
 *    re-declared and re-subscribed on the next fetch; a lost session drops its buffer (the broker
 *    already took those messages back) and its consumers.
 */
export class Intake {
  readonly #consumers = new Map<string, Consumer>();
  #buffer: Arrival[] = [];
  readonly #waiters = new Set<() => void>();
  #subscribing: Promise<void> = Promise.resolve();
  readonly #interest = new Map<string, number>();
  /** Queues with no fetch waiting, and since when. */
  readonly #idleSince = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    private readonly link: Link,
    private readonly topology: Topology,
    private readonly logger: Logger,
    /** Returns an arrival nobody started to its queue without counting a lapse (Settler.giveBack). */
    private readonly giveBack: (a: Arrival) => Promise<void>,
  ) {
    // One timer for all queues, not one per fetch: fetches come by the thousand per second.
    this.#sweeper = setInterval(() => this.#sweepIdle(), IDLE_CANCEL_MS / 2);
    this.#sweeper.unref();
    link.listen({
      opened: () => this.wake(),
      lost: (s) => {
        this.#buffer = this.#buffer.filter((a) => a.session !== s);
        for (const [q, c] of this.#consumers) if (c.session === s) this.#consumers.delete(q);
        this.wake();
      },
    });
  }

  /** A fetch on `queues` begins: their consumers are in use. */
  interested(queues: readonly string[]): void {
    for (const q of queues) {
      this.#interest.set(q, (this.#interest.get(q) ?? 0) + 1);
      this.#idleSince.delete(q);
    }
  }

  /** A fetch on `queues` ended: a consumer left without fetches is cancelled after a while. */
  uninterested(queues: readonly string[]): void {
    for (const q of queues) {
      const n = (this.#interest.get(q) ?? 1) - 1;
      if (n > 0) {
        this.#interest.set(q, n);
        continue;
      }
      this.#interest.delete(q);
      this.#idleSince.set(q, Date.now());
    }
  }

  #sweepIdle(): void {
    const now = Date.now();
    for (const [q, since] of this.#idleSince) {
      if (now - since < IDLE_CANCEL_MS) continue;
      this.#idleSince.delete(q);
      void this.#cancelIdle(q);
    }
  }

  stop(): void {
    clearInterval(this.#sweeper);
  }

  async #cancelIdle(queue: string): Promise<void> {
    const c = this.#consumers.get(queue);
    if (!c || this.#interest.has(queue)) return;
    this.#consumers.delete(queue);
    await c.session.sub.cancel(c.tag).catch(() => {});
    if (this.#interest.has(queue)) return; // a fetch came meanwhile: it takes the buffer
    const back = this.#buffer.filter((a) => a.consumer === c);
    this.#buffer = this.#buffer.filter((a) => a.consumer !== c);
    await this.#giveBack(back);
  }

  #giveBack(arrivals: Arrival[]): Promise<void> {
    return Promise.all(
      arrivals.map((a) =>
        this.giveBack(a).catch((err: Error) => {
          // Could not publish it again: a nack still returns it (counted as a lapse, logged).
          this.logger.warn({ queue: a.queue, err: err.message }, 'could not give back a prefetched message by republishing; nacking it');
          try {
            a.session.acks.nack(a.msg, true);
          } catch {} // dead channel: RabbitMQ has it back already
        }),
      ),
    ).then(() => {});
  }

  /** Removes the buffered arrivals of `queue` for good (a purge): acked, so RabbitMQ drops them; returns how many. */
  drop(queue: string): number {
    const live = this.link.current;
    const gone = this.#buffer.filter((a) => a.queue === queue && a.session === live);
    this.#buffer = this.#buffer.filter((a) => a.queue !== queue || a.session !== live);
    for (const a of gone) {
      try {
        a.session.acks.ack(a.msg);
      } catch {} // dead channel: RabbitMQ has it back, and it stays (as a leased one would)
    }
    return gone.length;
  }

  /** Messages buffered for `queue` (unacked at the broker, not yet handed out). */
  buffered(queue: string): number {
    let n = 0;
    for (const a of this.#buffer) if (a.queue === queue) n++;
    return n;
  }

  /**
   * Ready count of a queue this process consumes, read so that it adds up with `buffered`: a
   * message RabbitMQ has just dispatched to us is in neither its count nor our buffer until its
   * frame arrives. Frames on one channel are ordered, so the second passive declare on the
   * consume channel returns after any delivery dispatched before the first. Null when not consuming.
   */
  async readyCount(queue: string): Promise<number | null> {
    const c = this.#consumers.get(queue);
    if (!c || c.session !== this.link.current) return null;
    await c.session.sub.checkQueue(workQueue(queue));
    return (await c.session.sub.checkQueue(workQueue(queue))).messageCount;
  }

  /** Makes sure every queue has a live consumer able to hold `max` messages; undefined when they all have one. */
  ensure(session: Session, queues: readonly string[], max: number): Promise<void> | undefined {
    const missing = queues.filter((q) => {
      const c = this.#consumers.get(q);
      return !c || c.session !== session || c.prefetch < max;
    });
    return missing.length === 0 ? undefined : this.#ensure(session, missing, max);
  }

  async #ensure(session: Session, missing: string[], max: number): Promise<void> {
    await Promise.all(missing.map((q) => this.topology.work(q)));
    // basic.qos applies to the next basic.consume on the channel: serialise qos+consume pairs.
    const run = this.#subscribing.then(() => Promise.all(missing.map((q) => this.#subscribe(session, q, max))).then(() => {}));
    this.#subscribing = run.catch(() => {});
    await run;
  }

  /** Consumes another queue on the work channel with its own prefetch (0 = unlimited), in turn with the others. */
  async consumeWith(session: Session, name: string, prefetch: number, onMessage: (msg: ConsumeMessage | null) => void): Promise<void> {
    const run = this.#subscribing.then(async () => {
      await session.sub.prefetch(prefetch);
      await session.sub.consume(name, onMessage, { noAck: false });
    });
    this.#subscribing = run.catch(() => {});
    await run;
  }

  async #subscribe(session: Session, queue: string, max: number): Promise<void> {
    const old = this.#consumers.get(queue);
    if (old && old.session === session && old.prefetch >= max) return;
    if (this.link.current !== session) return;
    const prefetch = Math.max(max, old?.session === session ? old.prefetch : 0);
    await session.sub.prefetch(prefetch);
    const consumer: Consumer = { tag: '', prefetch, session };
    const ok = await session.sub.consume(workQueue(queue), (msg) => this.#arrive(queue, consumer, msg), { noAck: false }).catch((err: unknown) => {
      // A 404 here closed the consume channel (and so the session): declare again next time.
      this.topology.forget(workQueue(queue));
      throw err;
    });
    consumer.tag = ok.consumerTag;
    this.#consumers.set(queue, consumer);
    // Deliveries of the old consumer stay valid: they belong to the channel, not the consumer.
    if (old && old.session === session) await session.sub.cancel(old.tag).catch(() => {});
  }

  #arrive(queue: string, consumer: Consumer, msg: ConsumeMessage | null): void {
    if (msg === null) {
      this.logger.warn({ queue }, 'RabbitMQ cancelled the consumer (queue deleted or moved); re-subscribing');
      if (this.#consumers.get(queue) === consumer) this.#consumers.delete(queue);
      this.topology.forget(workQueue(queue));
      this.wake();
      return;
    }
    consumer.session.acks.track(msg);
    this.#buffer.push({ queue, msg, session: consumer.session, consumer });
    this.wake();
  }

  /**
   * Takes up to `max` buffered arrivals for `queues`, most urgent priority first, then in arrival
   * order, dropping any from a session that is gone.
   */
  take(queues: readonly string[], max: number): Arrival[] {
    const live = this.link.current;
    const wanted = new Set(queues);
    const mine: Arrival[] = [];
    const rest: Arrival[] = [];
    for (const a of this.#buffer) {
      if (a.session !== live) continue;
      (wanted.has(a.queue) ? mine : rest).push(a);
    }
    mine.sort((a, b) => (b.msg.properties.priority ?? 0) - (a.msg.properties.priority ?? 0));
    const taken = mine.slice(0, max);
    this.#buffer = rest.concat(mine.slice(max));
    return taken;
  }

  /** Resolves on the next arrival, session change, or after `ms`, or when `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Gives every buffered message back to the broker (closing); resolves once they are back. */
  giveBackAll(): Promise<void> {
    const back = this.#buffer.filter((a) => this.link.current === a.session);
    this.#buffer = [];
    return this.#giveBack(back);
  }
}
