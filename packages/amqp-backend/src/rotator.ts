import type { Logger } from '@celeriac/core';
import type { ConsumeMessage } from 'amqplib';
import type { Intake } from './intake.js';
import type { Held, Leases } from './leases.js';
import type { Link, Session } from './link.js';
import { copyHeaders } from './lapses.js';
import { H, holdQueue, workQueue } from './names.js';
import type { Publisher } from './publisher.js';
import { copyProps } from './settler.js';
import type { Topology } from './topology.js';

const ARRIVAL_TIMEOUT_MS = 10_000;

/**
 * Keeps long-running deliveries clear of RabbitMQ's `consumer_timeout` (30 min by default; past it
 * the broker closes the channel and requeues everything on it). No AMQP method resets a delivery's
 * age, so a delivery held longer than `rotateAfterMs` is rotated:
 * 1. a copy is published (confirmed) to this client's hold queue `<queue>:hold:<client>`, which this
 *    client consumes with no prefetch limit;
 * 2. the old delivery is acked (and a round trip on its channel made, so the ack took effect); the
 *    copy arrives as a fresh delivery and takes its place under the same token, so the worker
 *    notices nothing;
 * 3. if this client dies, its unacked copies return to the hold queue, expire at once (TTL 0) and
 *    dead-letter back to the work queue: at-least-once holds through a rotation.
 */
export class Rotator {
  readonly #timer: NodeJS.Timeout;
  readonly #arrivals = new Map<string, (msg: ConsumeMessage) => void>();
  readonly #consuming = new Map<string, { session: Session; ready: Promise<void> }>();

  constructor(
    private readonly link: Link,
    private readonly publisher: Publisher,
    private readonly topology: Topology,
    private readonly leases: Leases,
    private readonly intake: Intake,
    private readonly client: string,
    private readonly rotateAfterMs: number,
    private readonly logger: Logger,
  ) {
    this.#timer = setInterval(() => this.sweep(), Math.max(50, Math.min(30_000, rotateAfterMs / 4)));
    this.#timer.unref();
  }

  /** Rotates every delivery held past `rotateAfterMs`. */
  sweep(): void {
    const now = Date.now();
    for (const h of this.leases.values()) {
      if (h.settling || h.rotating || h.session !== this.link.current || now - h.since < this.rotateAfterMs) continue;
      this.rotate(h);
    }
  }

  /**
   * Rotates one delivery now. Also how a redelivered arrival on a classic queue gets its lapse
   * count written into the message (see lapses.ts): the copy carries `h.lapses`.
   */
  rotate(h: Held): Promise<void> {
    h.rotating = this.#rotate(h).finally(() => (h.rotating = undefined));
    return h.rotating;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #rotate(h: Held): Promise<void> {
    const s = h.session;
    const name = holdQueue(h.queue, this.client);
    try {
      await this.#consume(s, h.queue, name);
      const headers = { ...copyHeaders(h.msg.properties.headers, h.lapses), [H.hold]: h.token };
      const arrived = new Promise<ConsumeMessage | null>((resolve) => {
        const t = setTimeout(() => (this.#arrivals.delete(h.token), resolve(null)), ARRIVAL_TIMEOUT_MS);
        this.#arrivals.set(h.token, (msg) => (clearTimeout(t), resolve(msg)));
      });
      await this.publisher.publish({ queue: name, body: h.msg.content, props: { ...copyProps(h.msg.properties), headers }, mandatory: true });
      if (this.link.current !== s) throw new Error('session lost during rotation');
      s.acks.ack(h.msg);
      // RabbitMQ does not answer acks; a round trip on the same channel after it does. Only then is
      // the copy the one true message: a handler that kills its process right after must leave one
      // message behind (the copy, counted), not the old one (uncounted) as well.
      s.acks.flush();
      await s.sub.checkQueue(workQueue(h.queue));
      const msg = await arrived;
      if (!msg || this.link.current !== s) throw new Error('rotated copy did not arrive');
      h.msg = msg;
      h.since = Date.now();
      this.logger.debug({ taskId: h.message.id }, 'rotated a long-held delivery');
    } catch (err) {
      this.#arrivals.delete(h.token);
      this.logger.warn({ taskId: h.message.id, err: (err as Error).message }, 'rotation failed; the lease is lost and RabbitMQ will redeliver');
      this.leases.lose(h);
    }
  }

  #consume(s: Session, queue: string, name: string): Promise<void> {
    const current = this.#consuming.get(queue);
    if (current?.session === s) return current.ready;
    const ready = this.topology.hold(queue, this.client).then(() => this.intake.consumeWith(s, name, 0, (msg) => this.#arrive(s, msg)));
    this.#consuming.set(queue, { session: s, ready });
    ready.catch(() => this.#consuming.delete(queue));
    return ready;
  }

  #arrive(s: Session, msg: ConsumeMessage | null): void {
    if (msg === null) {
      for (const [q, c] of this.#consuming) if (c.session === s) this.#consuming.delete(q);
      return;
    }
    s.acks.track(msg);
    const token = String(msg.properties.headers?.[H.hold] ?? '');
    const take = this.#arrivals.get(token);
    this.#arrivals.delete(token);
    if (take) take(msg);
    // Nobody waits for it (the rotation gave up): dead-lettering returns it to the work queue.
    else s.acks.nack(msg, false);
  }
}
