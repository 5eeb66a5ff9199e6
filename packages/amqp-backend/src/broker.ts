import { randomUUID } from 'node:crypto';
import {
  DEFAULT_BROKER_OPTIONS,
  assertValidMessage,
  encodeMessage,
  parseMessage,
  silentLogger,
  type Broker,
  type BrokerCapabilities,
  type BrokerOptions,
  type DeadLetter,
  type Delivery,
  type ErrorInfo,
  type FetchRequest,
  type Logger,
  type Published,
  type PublishOptions,
  type QueueStats,
  type RedriveResult,
  type Settlement,
  type TaskMessage,
} from '@celeriac/core';
import { DeadLetterQueue, letterIdOf, letterOf } from './dead.js';
import { Dedup } from './dedup.js';
import { Intake, type Arrival } from './intake.js';
import { lapsesOf, mustRewrite } from './lapses.js';
import { Leases } from './leases.js';
import { heartbeatForLease, negotiatedHeartbeat, takeoverBoundMs, TAKEOVER_HEARTBEATS } from './heartbeat.js';
import { isChannelError, Link, type Session } from './link.js';
import { H } from './names.js';
import { parseAmqpUrl, type AmqpOptions } from './options.js';
import { Publisher, UnroutableError } from './publisher.js';
import { purgeQueues } from './purge.js';
import { BackendError, MAX_PEEK_BYTES, withTimeout } from '@celeriac/core';
import type { Options } from 'amqplib';
import { AmqpResults } from './results.js';
import { Retention } from './retention.js';
import { Rotator } from './rotator.js';
import { Settler, type Counters } from './settler.js';
import { Topology } from './topology.js';
import { readDeadLetters, readStats } from './stats.js';

/** AMQP options (as in the URL) plus core's limits; the publish bound is the AMQP `publishTimeoutMs`. */
export type AmqpBrokerOptions = AmqpOptions & Partial<Omit<BrokerOptions, 'publishTimeoutMs'>>;

/**
 * The RabbitMQ broker (`amqp://`, `amqps://`).
 * 1. Publishes persistent messages with confirms (and `mandatory`), deduplicating by task id and
 *    idempotency key within this process.
 * 2. Fetches from per-queue consumers with manual acks; the unacked delivery is the lease, kept
 *    to `leaseMs` here (and by a heartbeat fitted to it while the event loop is blocked) and fenced
 *    by a token bound to the channel generation. Arrivals are parsed by core (size, queue) and
 *    carry `lapses`, the deaths of their attempt (lapses.ts).
 * 3. Settles through the Settler (publish first, ack second), delays through the TTL ladder.
 * 4. Keeps results in reply queues (AmqpResults) when no other store is configured.
 * 5. Survives connection and channel loss (Link), broker-cancelled consumers (Intake) and
 *    `consumer_timeout` for long tasks (Rotator).
 * 6. Redrives and discards dead letters by id (DeadLetterQueue) and purges ready and delayed
 *    messages (purge.ts): rules 8-10.
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
  readonly #dead: DeadLetterQueue;
  readonly #counters: Counters = { completed: new Map(), failed: new Map() };
  readonly #replies: boolean;
  /** Core's limits (size, dead-letter retention), as `connectBroker(url, options)` passed them. */
  readonly limits: BrokerOptions;
  /** Lease lengths whose heartbeat was checked (see #fitHeartbeat). */
  readonly #heartbeatFor = new Set<number>();
  /** The last session a fetch subscribed on: replacing it could count a lapse (see #fitHeartbeat). */
  #subscribedOn = 0;
  #closed = false;

  /**
   * `options`: the AMQP options (as in the URL) and core's `BrokerOptions` (`maxMessageBytes`,
   * `deadLetters`, `publishTimeoutMs`), as `connectBroker(url, options)` passes them.
   */
  constructor(url: string, options: AmqpBrokerOptions = {}, readonly logger: Logger = silentLogger) {
    const { maxMessageBytes, deadLetters, ...amqpOptions } = options;
    const parsed = parseAmqpUrl(url, amqpOptions);
    const o = parsed.options;
    this.limits = {
      maxMessageBytes: maxMessageBytes ?? DEFAULT_BROKER_OPTIONS.maxMessageBytes,
      deadLetters: deadLetters ?? DEFAULT_BROKER_OPTIONS.deadLetters,
      publishTimeoutMs: o.publishTimeoutMs,
    };
    this.link = new Link(parsed.url, { minMs: o.reconnectMinMs, maxMs: o.reconnectMaxMs, waitMs: o.publishTimeoutMs }, logger, `celeriac:${this.client}`, o.heartbeatPinned);
    this.#publisher = new Publisher(this.link, o.publishTimeoutMs);
    const retention = new Retention(this.link, this.limits.deadLetters, logger);
    this.#topology = new Topology(this.link, new Set(o.quorumQueues), o.maxPriority, retention);
    this.capabilities = { delays: true, priorities: o.maxPriority > 0, deadLetter: true, cluster: true, taskStates: false, sharedDedup: false, deadLetterOrder: 'oldest' };
    this.#intake = new Intake(this.link, this.#topology, logger, (a) => this.#settler.giveBack(a));
    this.#leases = new Leases(this.link, this.client);
    this.results = new AmqpResults(this.link, this.#publisher, this.#topology, this.#intake, this.client, o.replyQueueExpiresMs, logger);
    this.#settler = new Settler(this.#publisher, this.#topology, this.#leases, this.results, this.#counters, retention);
    this.#rotator = new Rotator(this.link, this.#publisher, this.#topology, this.#leases, this.#intake, this.client, o.rotateAfterMs, logger);
    this.#dedup = new Dedup(o.dedupIds);
    this.#dead = new DeadLetterQueue(this.link, this.#settler, this.results, this.limits.maxMessageBytes, o.publishTimeoutMs);
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
    // Encoded (and size-checked) before any is claimed or sent: an oversized one fails the whole publish.
    const raws = checked.map((m) => encodeMessage(m, this.limits.maxMessageBytes));
    for (const [i, m] of checked.entries()) {
      const owner = this.results.known(m) ? m.id : this.#dedup.claim(m, keyTtlMs);
      out.push({ id: owner ?? m.id, duplicate: owner !== null });
      if (owner !== null) continue;
      fresh.push(m);
      const props: Options.Publish = { persistent: true, contentType: 'application/json', messageId: m.id, priority: m.priority };
      if (this.#replies) {
        props.replyTo = this.results.replyQueue;
        this.results.notePublished(m.id);
      }
      const body = Buffer.from(raws[i]!);
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
      if (!this.#heartbeatFor.has(request.leaseMs) && this.#fitHeartbeat(session, request.leaseMs)) continue;
      this.#subscribedOn = session.gen;
      try {
        const subscribing = this.#intake.ensure(session, request.queues, max);
        if (subscribing) await subscribing;
      } catch (err) {
        if (isChannelError(err) || this.#closed) throw err;
        await sleep(20); // the session is going away: subscribe again on the next one
        continue;
      }
      let out: AmqpDelivery[] = [];
      for (const a of this.#intake.take(request.queues, max)) {
        const d = this.#accept(a, request.leaseMs);
        if (d instanceof AmqpDelivery) out.push(d);
        else if (d) await d; // buried: wait for the dead letter to land
      }
      // Redelivered arrivals being rotated (their lapse count written down) are handed out once
      // that landed; one whose rotation failed is back with RabbitMQ and comes again.
      if (out.some((d) => d.rotating)) {
        await Promise.all(out.map((d) => d.rotating));
        out = out.filter((d) => this.#leases.owns(d.token));
      }
      if (out.length > 0) return out;
      const left = deadline - Date.now();
      if (left <= 0) return out;
      await this.#intake.wait(left, request.signal);
    }
  }

  /**
   * Makes sure a blocked owner loses its leases within `leaseMs` (issue 8, defect 4): only RabbitMQ
   * can take them back, after about TAKEOVER_HEARTBEATS missed heartbeats. Checked once per lease
   * length. A heartbeat too long for the lease and not pinned by the user is lowered (Link.retune);
   * if no fetch has subscribed on this session yet (a worker's first fetch), the session is replaced
   * at once. Otherwise the lower heartbeat waits for the next reconnect, with a warning: closing a
   * connection that consumes returns whatever RabbitMQ had in flight to it as a death of its task
   * (a lapse; a quorum queue even returns deliveries that trail a cancel). A pinned heartbeat is
   * kept, with a warning naming the URL parameter that fixes it. True when the session was dropped.
   */
  #fitHeartbeat(session: Session, leaseMs: number): boolean {
    this.#heartbeatFor.add(leaseMs);
    const heartbeat = negotiatedHeartbeat(session.model);
    const bound = takeoverBoundMs(heartbeat);
    const fit = heartbeatForLease(leaseMs);
    const log = { leaseMs, heartbeatS: heartbeat, takeoverBoundMs: bound };
    if (bound <= leaseMs) return false;
    if (heartbeat > 0 && heartbeat <= fit) {
      // As short as heartbeats go (whole seconds): a lease under 3 s cannot do better than 3 s.
      this.logger.warn(log, `leaseMs ${leaseMs} is shorter than the shortest heartbeat takeover (${bound} ms): a blocked worker keeps its tasks that long`);
      return false;
    }
    if (this.link.retune(fit)) {
      if (this.#subscribedOn !== session.gen && this.#leases.size === 0) {
        session.acks.flush();
        this.link.drop(new Error(`heartbeat ${heartbeat} s → ${fit} s, fitted to leaseMs ${leaseMs}`), true);
        return true;
      }
      this.logger.warn(log, `heartbeat lowered to ${fit} s for leaseMs ${leaseMs} from the next connection on; until then a worker whose event loop blocks keeps its tasks up to ~${TAKEOVER_HEARTBEATS} × ${heartbeat} s`);
      return false;
    }
    this.logger.warn(
      log,
      `a worker whose event loop blocks keeps its tasks until RabbitMQ misses its heartbeats (~${TAKEOVER_HEARTBEATS} × ${heartbeat} s), longer than leaseMs ${leaseMs}, and the heartbeat was set by the broker URL or the heartbeatS option: connect with ?heartbeat=${fit}`,
    );
    return false;
  }

  /** Turns an arrival into a delivery, or re-delays it (null), or buries it (the promise of that). */
  #accept(a: Arrival, leaseMs: number): AmqpDelivery | Promise<void> | null {
    const parsed = parseMessage(a.msg.content.toString(), { queue: a.queue, maxBytes: this.limits.maxMessageBytes });
    if (!parsed.ok) {
      return this.#settler.buryArrival(a, parsed.reason).catch((err: Error) => {
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
    const quorum = this.#topology.isQuorum(a.queue);
    const held = this.#leases.add(a.queue, message, a.msg, a.session, leaseMs, lapsesOf(a.msg, quorum));
    this.results.rememberReplyTo(message.id, a.msg.properties.replyTo as string | undefined);
    // A classic queue marks a redelivery only with a flag that stays set: the count goes into a copy.
    const rotating = mustRewrite(a.msg, quorum) ? this.#rotator.rotate(held) : undefined;
    return new AmqpDelivery(this.#settler, message, held.token, held.lapses, rotating);
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
    return operatorBound(readDeadLetters(this.link, queue, limit, MAX_PEEK_BYTES, letterOf), `reading the dead letters of ${queue}`);
  }

  /**
   * AMQP cannot read ids without the bodies: all the letters (within retention), no byte budget,
   * each body dropped as soon as its id is read (10,000 letters of 1 MiB must not all be held).
   */
  deadLetterIds(queue: string): Promise<string[]> {
    const ids = readDeadLetters(this.link, queue, this.limits.deadLetters.maxCount, Number.POSITIVE_INFINITY, letterIdOf);
    return operatorBound(ids, `reading the dead letters of ${queue}`);
  }

  redrive(queue: string, options: { ids?: readonly string[] } = {}): Promise<RedriveResult> {
    return this.#dead.redrive(queue, options.ids);
  }

  discard(queue: string, { ids }: { ids: readonly string[] }): Promise<number> {
    return this.#dead.discard(queue, ids);
  }

  /** Rule 10: this process's prefetched buffer of the queue, then what RabbitMQ holds ready (purge.ts). */
  async purge(queue: string): Promise<number> {
    const dropped = this.#intake.drop(queue);
    const purged = await operatorBound(purgeQueues(this.link, queue), `purging ${queue}`);
    // Purged ids (and their keys) may be published again; those leased here now stay known.
    this.#dedup.forgetQueue(queue, this.#leases.idsFor(queue));
    return dropped + purged;
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
    const givingBack = this.#intake.giveBackAll();
    const until = Date.now() + 5_000;
    await Promise.race([givingBack, new Promise((r) => setTimeout(r, 5_000).unref())]);
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
    readonly lapses: number,
    /** Set while the delivery's lapse count is being written into its message (not yet handed out). */
    readonly rotating?: Promise<void>,
  ) {}

  ack(settlement?: Settlement): Promise<void> {
    return this.settler.ack(this, settlement);
  }

  retry(next: TaskMessage, at: number): Promise<void> {
    return this.settler.retry(this, next, at);
  }

  deadLetter(reason: string, settlement?: Settlement, error?: ErrorInfo | null): Promise<void> {
    return this.settler.deadLetter(this, reason, settlement, error ?? settlement?.record.error ?? null);
  }

  release(at?: number): Promise<void> {
    return this.settler.release(this, at);
  }
}

/** Operator calls (dead letters, purge) wait for RabbitMQ at most this long, then reject naming what timed out. */
const OPERATOR_BOUND_MS = 60_000;

function operatorBound<T>(call: Promise<T>, what: string): Promise<T> {
  return withTimeout(call, OPERATOR_BOUND_MS, () => new BackendError(`RabbitMQ did not finish ${what} within ${OPERATOR_BOUND_MS / 1_000} s`));
}
