import { randomUUID } from 'node:crypto';
import {
  assertValidMessage,
  encodeMessage,
  parseMessage,
  silentLogger,
  type Broker,
  type BrokerCapabilities,
  type DeadLetter,
  type Delivery,
  type ErrorInfo,
  type FetchRequest,
  type Logger,
  type Published,
  type PublishOptions,
  type QueueStats,
  type Settlement,
  type TaskMessage,
} from '@celeriac/core';
import { Dedup } from './dedup.js';
import { Intake, type Arrival } from './intake.js';
import { Leases } from './leases.js';
import { isChannelError, Link } from './link.js';
import { H } from './names.js';
import { parseAmqpUrl, type AmqpOptions } from './options.js';
import { Publisher, UnroutableError } from './publisher.js';
import type { Options } from 'amqplib';
import { AmqpResults } from './results.js';
import { Rotator } from './rotator.js';
import { Settler, type Counters } from './settler.js';
import { Topology } from './topology.js';
import { readDeadLetters, readStats } from './stats.js';

/**
 * The RabbitMQ broker (`amqp://`, `amqps://`).
 * 1. Publishes persistent messages with confirms (and `mandatory`), deduplicating by task id and
 *    idempotency key within this process.
 * 2. Fetches from per-queue consumers with manual acks; the unacked delivery is the lease, kept
 *    to `leaseMs` here and fenced by a token bound to the channel generation.
 * 3. Settles through the Settler (publish first, ack second), delays through the TTL ladder.
 * 4. Keeps results in reply queues (AmqpResults) when no other store is configured.
 * 5. Survives connection and channel loss (Link), broker-cancelled consumers (Intake) and
 *    `consumer_timeout` for long tasks (Rotator).
 */
export class AmqpBroker implements Broker {
  /**
   * `deadLetter`: the `<queue>:dead` queue. `priorities`: classic queues with `x-max-priority`
   * (quorum queues ignore them before RabbitMQ 4.0). `taskStates`: AMQP cannot find a message in
   * a queue. `cluster`: works against a RabbitMQ cluster (quorum queues for replication).
   */
  readonly capabilities: BrokerCapabilities;
  readonly results: AmqpResults;
  readonly client = randomUUID().slice(0, 13);
  readonly link: Link;
  readonly #publisher: Publisher;
  readonly #topology: Topology;
  readonly #intake: Intake;
  readonly #leases: Leases;
  readonly #settler: Settler;
  readonly #rotator: Rotator;
  readonly #dedup: Dedup;
  readonly #counters: Counters = { completed: new Map(), failed: new Map() };
  readonly #replies: boolean;
  #closed = false;

  constructor(url: string, options: AmqpOptions = {}, readonly logger: Logger = silentLogger) {
    const parsed = parseAmqpUrl(url, options);
    const o = parsed.options;
    this.link = new Link(parsed.url, { minMs: o.reconnectMinMs, maxMs: o.reconnectMaxMs }, logger, `celeriac:${this.client}`);
    this.#publisher = new Publisher(this.link);
    this.#topology = new Topology(this.link, new Set(o.quorumQueues), o.maxPriority);
    this.capabilities = { delays: true, priorities: o.maxPriority > 0, deadLetter: true, cluster: true, taskStates: false, sharedDedup: false };
    this.#intake = new Intake(this.link, this.#topology, logger);
    this.#leases = new Leases(this.link, this.client);
    this.results = new AmqpResults(this.link, this.#publisher, this.#topology, this.#intake, this.client, o.replyQueueExpiresMs, logger);
    this.#settler = new Settler(this.#publisher, this.#topology, this.#leases, this.results, this.#counters);
    this.#rotator = new Rotator(this.link, this.#publisher, this.#topology, this.#leases, this.#intake, this.client, o.rotateAfterMs, logger);
    this.#dedup = new Dedup(o.dedupIds);
    this.#replies = o.replies;
  }

  /** Opens the connection (fails fast on a bad URL or credentials). */
  async connect(): Promise<this> {
    await this.link.session();
    return this;
  }

  async publish(messages: readonly TaskMessage[], { keyTtlMs }: PublishOptions): Promise<Published[]> {
    const checked = messages.map(assertValidMessage);
    if (this.#replies && !this.results.listening) await this.results.listen();
    const out: Published[] = [];
    const sends: Promise<void>[] = [];
    const fresh: TaskMessage[] = [];
    for (const m of checked) {
      const owner = this.results.known(m) ? m.id : this.#dedup.claim(m, keyTtlMs);
      out.push({ id: owner ?? m.id, duplicate: owner !== null });
      if (owner !== null) continue;
      fresh.push(m);
      const props: Options.Publish = { persistent: true, contentType: 'application/json', messageId: m.id, priority: m.priority };
      if (this.#replies) props.replyTo = this.results.replyQueue;
      const body = Buffer.from(encodeMessage(m));
      const now = m.eta === null || m.eta <= Date.now();
      // Fast path (a ready task to a queue declared already): straight to the publisher. The
      // Settler's path declares, routes down the ladder, and retries an unroutable publish.
      if (now && this.#topology.workReady(m.queue)) {
        sends.push(this.#publisher.publish({ queue: m.queue, body, props, mandatory: true }).catch((err: unknown) => {
          if (!(err instanceof UnroutableError)) throw err;
          this.#topology.forget(m.queue);
          return this.#settler.send(m.queue, body, props, 0);
        }));
      } else sends.push(this.#settler.send(m.queue, body, props, m.eta ?? 0));
    }
    if (sends.length === 1) {
      // The common single enqueue: no allSettled bookkeeping.
      await sends[0]!.catch((err: unknown) => {
        this.#dedup.forget(fresh[0]!);
        throw err;
      });
      return out;
    }
    const settled = await Promise.allSettled(sends);
    const failed = settled.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      // Nothing we could not confirm may block a later publish of the same task.
      settled.forEach((s, i) => s.status === 'rejected' && this.#dedup.forget(fresh[i]!));
      throw (settled[failed] as PromiseRejectedResult).reason;
    }
    return out;
  }

  async fetch(request: FetchRequest): Promise<Delivery[]> {
    this.#intake.interested(request.queues);
    try {
      return await this.#fetch(request);
    } finally {
      this.#intake.uninterested(request.queues);
    }
  }

  async #fetch(request: FetchRequest): Promise<Delivery[]> {
    const deadline = Date.now() + request.waitMs;
    const max = Math.max(1, request.max);
    for (;;) {
      if (this.#closed || request.signal?.aborted) return [];
      // Awaits only when there is something to wait for: fetches come thousands per second.
      const session = this.link.current ?? (await this.link.session());
      try {
        const subscribing = this.#intake.ensure(session, request.queues, max);
        if (subscribing) await subscribing;
      } catch (err) {
        if (isChannelError(err) || this.#closed) throw err;
        await sleep(20); // the session is going away: subscribe again on the next one
        continue;
      }
      const out: Delivery[] = [];
      for (const a of this.#intake.take(request.queues, max)) {
        const d = this.#accept(a, request.leaseMs);
        if (d instanceof AmqpDelivery) out.push(d);
        else if (d) await d; // buried: wait for the dead letter to land
      }
      if (out.length > 0) return out;
      const left = deadline - Date.now();
      if (left <= 0) return out;
      await this.#intake.wait(left, request.signal);
    }
  }

  /** Turns an arrival into a delivery, or re-delays it (null), or buries it (the promise of that). */
  #accept(a: Arrival, leaseMs: number): AmqpDelivery | Promise<void> | null {
    const raw = a.msg.content.toString();
    const parsed = parseMessage(raw);
    if (!parsed.ok || parsed.message.queue !== a.queue) {
      const reason = parsed.ok ? `malformed message: it names queue "${parsed.message.queue}" but arrived on "${a.queue}"` : parsed.reason;
      return this.#settler.buryArrival(a, reason).catch((err: Error) => {
        this.logger.error({ err: err.message }, 'could not dead-letter a malformed message; giving it back');
        giveBack(a);
      });
    }
    const message = parsed.message;
    const readyAt = Number(a.msg.properties.headers?.[H.readyAt] ?? message.eta ?? 0);
    if (readyAt > Date.now()) {
      this.#settler.hop(a, readyAt).catch((err: Error) => {
        this.logger.warn({ err: err.message }, 'delay hop failed; giving the message back');
        giveBack(a);
      });
      return null;
    }
    const held = this.#leases.add(a.queue, message, a.msg, a.session, leaseMs);
    this.results.rememberReplyTo(message.id, a.msg.properties.replyTo as string | undefined);
    return new AmqpDelivery(this.#settler, message, held.token);
  }

  async renew(deliveries: readonly Delivery[], leaseMs: number): Promise<boolean[]> {
    return deliveries.map((d) => this.#leases.renew(d.token, leaseMs));
  }

  async state(): Promise<null> {
    return null;
  }

  async stats(queue: string): Promise<QueueStats> {
    const ready = await this.#intake.readyCount(queue);
    return readStats(this.link, queue, { ready, buffered: this.#intake.buffered(queue), held: this.#leases.countFor(queue) }, this.#counters);
  }

  deadLetters(queue: string, limit = 100): Promise<DeadLetter[]> {
    return readDeadLetters(this.link, queue, limit);
  }

  /** AMQP queues this broker declared (work, dead, ladder rungs, hold, reply). */
  get declaredQueues(): string[] {
    return this.#topology.names();
  }

  /** Messages published but not yet confirmed by RabbitMQ. */
  get unconfirmed(): number {
    return this.#publisher.unconfirmed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#intake.wake();
    this.#rotator.stop();
    this.#intake.stop();
    this.#intake.requeueAll();
    const until = Date.now() + 5_000;
    while (this.#publisher.unconfirmed > 0 && Date.now() < until && this.link.current) await new Promise((r) => setTimeout(r, 10));
    await this.results.close();
    await this.link.close();
    this.#publisher.failAll(new Error('AMQP broker closed'));
  }
}

/**
 * Returns an arrival we could not move on (its publish failed): nacked with requeue after a pause,
 * so it is neither stuck unacked on the channel nor spinning through a broker that refuses it.
 */
function giveBack(a: Arrival): void {
  setTimeout(() => {
    try {
      a.session.acks.nack(a.msg, true);
    } catch {} // channel gone: RabbitMQ has it back already
  }, 1_000).unref();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

class AmqpDelivery implements Delivery {
  constructor(
    private readonly settler: Settler,
    readonly message: TaskMessage,
    readonly token: string,
    readonly lapses = 0,
  ) {}

  ack(settlement?: Settlement): Promise<void> {
    return this.settler.ack(this, settlement);
  }

  retry(next: TaskMessage, at: number): Promise<void> {
    return this.settler.retry(this, next, at);
  }

  deadLetter(reason: string, settlement?: Settlement): Promise<void> {
    return this.settler.deadLetter(this, reason, settlement);
  }

  release(at?: number): Promise<void> {
    return this.settler.release(this, at);
  }
}
