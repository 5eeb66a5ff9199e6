import { encodeMessage, type ErrorInfo, type Settlement, type TaskMessage } from '@celeriac/core';
import type { Message, MessageProperties, Options } from 'amqplib';
import type { Arrival } from './intake.js';
import type { Held, Leases } from './leases.js';
import { copyHeaders, lapsesOf } from './lapses.js';
import { deadQueue, H, workQueue } from './names.js';
import { UnroutableError, type Publisher } from './publisher.js';
import type { AmqpResults } from './results.js';
import type { Retention } from './retention.js';
import type { Topology } from './topology.js';

type Ref = { token: string; message: { id: string } };

export interface Counters {
  completed: Map<string, number>;
  failed: Map<string, number>;
}

/**
 * Settles deliveries. Every move is publish-with-confirm first, ack second, so a crash between the
 * two leaves a duplicate (absorbed by task id and idempotency), never a loss.
 * 1. ack: the settlement goes to the task's publisher (reply queue) before the ack — published on
 *    the session that received the delivery and only while it is current, never sent again on a
 *    later one: a stale owner's outcome rejects with LeaseLostError and reaches nobody.
 * 2. retry: the next attempt goes down the delay ladder (its lapses start again at 0), then the ack.
 *    release: the same attempt is published again (to the ladder, or the back of the work queue)
 *    keeping its lapses, then acked — not nacked, which RabbitMQ would count as a death.
 * 3. dead letter: the message, unchanged, goes to `<queue>:dead` with the reason in its headers.
 * 4. Messages that come in early (a ladder hop) go one rung further; malformed ones are buried.
 */
export class Settler {
  constructor(
    private readonly publisher: Publisher,
    private readonly topology: Topology,
    private readonly leases: Leases,
    private readonly results: AmqpResults,
    private readonly counters: Counters,
    private readonly retention: Retention,
  ) {}

  async ack({ token, message }: Ref, settlement: Settlement | undefined): Promise<void> {
    // The common case (no rotation under way, no reply to send) runs without a single await.
    const begun = this.leases.begin(token, message.id);
    const h = begun instanceof Promise ? await begun : begun;
    if (settlement) {
      const sending = this.#try(h, () => this.results.deliver(settlement, h.msg.properties.replyTo as string | undefined, h.session));
      if (sending) await this.#guard(h, () => sending);
    }
    this.leases.finish(h);
    bump(settlement && settlement.record.state !== 'succeeded' ? this.counters.failed : this.counters.completed, h.queue);
  }

  async retry({ token, message }: Ref, next: TaskMessage, at: number): Promise<void> {
    const h = await this.leases.begin(token, message.id);
    await this.#guard(h, () => this.send(h.queue, Buffer.from(encodeMessage(next)), h.msg.properties, at));
    this.leases.finish(h);
  }

  async release({ token, message }: Ref, at: number | undefined): Promise<void> {
    const h = await this.leases.begin(token, message.id);
    await this.#guard(h, () => this.send(h.queue, h.msg.content, h.msg.properties, at ?? 0, h.lapses));
    this.leases.finish(h);
  }

  async deadLetter({ token, message }: Ref, reason: string, settlement: Settlement | undefined, error: ErrorInfo | null): Promise<void> {
    const h = await this.leases.begin(token, message.id);
    await this.#guard(h, async () => {
      if (settlement) await this.results.deliver(settlement, h.msg.properties.replyTo as string | undefined, h.session);
      await this.bury(h.queue, h.msg, reason, error);
    });
    this.leases.finish(h);
    bump(this.counters.failed, h.queue);
  }

  /** Moves a message that must not run (malformed) to the dead queue, then acks it. */
  async buryArrival(a: Arrival, reason: string): Promise<void> {
    await this.bury(a.queue, a.msg, reason, null);
    ackQuietly(a);
    bump(this.counters.failed, a.queue);
  }

  /** Sends an early arrival one rung further down the ladder, then acks it. */
  async hop(a: Arrival, readyAt: number): Promise<void> {
    await this.send(a.queue, a.msg.content, a.msg.properties, readyAt, lapsesOf(a.msg, this.topology.isQuorum(a.queue)));
    ackQuietly(a);
  }

  /**
   * Gives back an arrival nobody started (an idle consumer's buffer, closing): published again to
   * the back of its queue with its lapses, then acked. A nack would make RabbitMQ mark it
   * redelivered, which counts as a death; this costs its place in the queue instead.
   */
  async giveBack(a: Arrival): Promise<void> {
    // A release to a later time is due by its header alone: keep it, or it would run early.
    const readyAt = Number(a.msg.properties.headers?.[H.readyAt] ?? 0) || 0;
    await this.send(a.queue, a.msg.content, a.msg.properties, readyAt, lapsesOf(a.msg, this.topology.isQuorum(a.queue)));
    ackQuietly(a);
  }

  async bury(queue: string, msg: Message, reason: string, error: ErrorInfo | null): Promise<void> {
    const headers: Record<string, unknown> = { ...(msg.properties.headers ?? {}), [H.reason]: reason, [H.deadAt]: Date.now(), [H.error]: error ? JSON.stringify(error) : '' };
    delete headers[H.readyAt];
    await this.#publish(deadQueue(queue), msg.content, { ...copyProps(msg.properties), headers }, () => this.topology.dead(queue));
    void this.retention.buried(queue);
  }

  /**
   * Publishes a task message to run at `readyAt`: straight to the work queue, or down the ladder.
   * `lapses`: those of the attempt it continues (release, hop, give-back); none for a new attempt.
   */
  async send(queue: string, body: Buffer, props: Partial<MessageProperties>, readyAt: number, lapses?: number): Promise<void> {
    const remaining = readyAt - Date.now();
    const headers = copyHeaders(props.headers, lapses);
    if (remaining >= 1) {
      headers[H.readyAt] = readyAt;
      return this.#publish('', body, { ...copyProps(props), headers }, () => this.topology.delay(queue, remaining));
    }
    delete headers[H.readyAt];
    return this.#publish(workQueue(queue), body, { ...copyProps(props), headers }, () => this.topology.work(queue));
  }

  /** Declares (cached) then publishes; if the queue vanished meanwhile, declares again and retries once. */
  async #publish(name: string, body: Buffer, props: Options.Publish, declare: () => Promise<string | void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const queue = (await declare()) || name;
      try {
        return await this.publisher.publish({ queue, body, props, mandatory: true });
      } catch (err) {
        if (!(err instanceof UnroutableError) || attempt > 0) throw err;
        this.topology.forget(queue);
      }
    }
  }

  /** The synchronous start of a settlement's publish; if it throws, the lease is handed back to its timer. */
  #try<T>(h: Held, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      this.leases.abandon(h);
      throw err;
    }
  }

  /** Runs the publish part of a settlement; on failure the lease is handed back to its timer. */
  async #guard(h: Held, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.leases.abandon(h);
      throw err;
    }
  }
}

/** The properties a republished task keeps: persistence, priority, reply address, id. */
export function copyProps(p: Partial<MessageProperties>): Options.Publish {
  const out: Options.Publish = { persistent: true, contentType: (p.contentType as string | undefined) ?? 'application/json' };
  if (p.priority !== undefined) out.priority = p.priority as number;
  if (p.replyTo) out.replyTo = p.replyTo as string;
  if (p.messageId) out.messageId = p.messageId as string;
  if (p.correlationId) out.correlationId = p.correlationId as string;
  return out;
}

function bump(map: Map<string, number>, queue: string): void {
  map.set(queue, (map.get(queue) ?? 0) + 1);
}

function ackQuietly(a: Arrival): void {
  // On a dead channel the ack is moot: RabbitMQ requeued the message and the copy we published
  // is a duplicate that the task id and idempotency rules absorb.
  try {
    a.session.acks.ack(a.msg);
  } catch {}
}
