import { BackendError, LeaseLostError, MemoryResultBackend, type KeyClaim, type KeyRef, type Logger, type ResultBackend, type Settlement, type StoreOptions, type TaskRef, type TaskResult } from '@celeriac/core';
import type { ConsumeMessage, Options } from 'amqplib';
import type { Link, Session } from './link.js';
import { H, replyQueue } from './names.js';
import type { Publisher } from './publisher.js';
import type { Intake } from './intake.js';
import type { Topology } from './topology.js';

const REMEMBERED_REPLY_TOS = 10_000;
/** Task ids this process published with replies, remembered for `knows` (the oldest are forgotten first). */
const REMEMBERED_PUBLISHED = 100_000;

/**
 * Results over AMQP with no other store: each client has a durable reply queue
 * (`celeriac:reply:<client>`, removed by `x-expires` once the client is gone), named in the
 * `replyTo` of every task it publishes. The worker that settles a task publishes the record there
 * (persistent, with confirms, expiring after the result TTL) *before* it acks the task.
 *
 * Why not direct reply-to: replies to `amq.rabbitmq.reply-to` are neither queued nor persistent;
 * a result sent while the client reconnects is lost, and a task that outlives the client's
 * channel can never answer. A reply queue keeps results across reconnects and broker restarts.
 *
 * 1. Records arriving on the reply queue land in an in-process table (TTL-bound) that serves
 *    `get` and wakes `wait` at once (`push`: no polling).
 * 2. `claimKey`/`releaseKey` and the records a worker settles are kept in this process.
 * Limits (use `results: 'redis://…'` to lift them): a result reaches only the process that
 * published the task, so `get`/`wait` from another process see nothing; idempotency claims are
 * per worker process, so two workers could each run a keyed task whose deliveries overlap.
 */
export class AmqpResults implements ResultBackend {
  readonly capabilities = { push: true, shared: false };
  /** Reply queues share nothing: the control plane needs `results: 'redis://…'` beside RabbitMQ. */
  readonly coordination = null;
  readonly #local = new MemoryResultBackend();
  readonly #replyTos = new Map<string, string>();
  readonly #published = new Set<string>();
  #listening: Promise<void> | undefined;
  /** Results published on a session and not yet confirmed: rejected when that session is lost. */
  readonly #unconfirmed = new Map<Session, Set<() => void>>();
  #consumerSession: Session | undefined;

  constructor(
    private readonly link: Link,
    private readonly publisher: Publisher,
    private readonly topology: Topology,
    private readonly intake: Intake,
    readonly client: string,
    private readonly expiresMs: number,
    private readonly logger: Logger,
  ) {
    link.listen({
      opened: (s) => {
        if (this.#listening) void this.#consume(s).catch((err: Error) => this.logger.warn({ err: err.message }, 'reply queue re-subscribe failed'));
      },
      lost: (s) => {
        this.#consumerSession = undefined;
        // Results still waiting for their confirm on that session will never be confirmed there.
        for (const fail of this.#unconfirmed.get(s) ?? []) fail();
        this.#unconfirmed.delete(s);
      },
    });
  }

  /** The queue results for this client's tasks go to. */
  get replyQueue(): string {
    return replyQueue(this.client);
  }

  #ready = false;

  /** True once the reply queue is being consumed. */
  get listening(): boolean {
    return this.#ready;
  }

  /** Declares the reply queue and consumes it (once); called before the first publish. */
  listen(): Promise<void> {
    this.#listening ??= this.link.session().then((s) => this.#consume(s)).then(() => {
      this.#ready = true;
    }, (err: unknown) => {
      this.#listening = undefined;
      throw err;
    });
    return this.#listening;
  }

  // Manual acks, not noAck: a reply pushed while the connection is going down must stay in the
  // queue (requeued unacked) rather than vanish with the socket.
  async #consume(s: Session): Promise<void> {
    await this.topology.reply(this.client, this.expiresMs);
    if (this.#consumerSession === s) return;
    this.#consumerSession = s;
    await this.intake.consumeWith(s, this.replyQueue, 0, (msg) => this.#arrive(s, msg)).catch((err: unknown) => {
      if (this.#consumerSession === s) this.#consumerSession = undefined;
      throw err;
    });
  }

  #arrive(s: Session, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The reply queue was deleted under us: declare and subscribe again.
      this.topology.forget(this.replyQueue);
      this.#consumerSession = undefined;
      const s = this.link.current;
      if (s) void this.#consume(s).catch(() => {});
      return;
    }
    try {
      const record = JSON.parse(msg.content.toString()) as TaskResult;
      const headers = msg.properties.headers ?? {};
      this.#local.storeNow({ record, ttlMs: Number(headers[H.ttlMs]) || 86_400_000, keyTtlMs: Number(headers[H.keyTtlMs]) || 86_400_000 });
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'ignored an unreadable reply');
    }
    s.acks.track(msg);
    s.acks.ack(msg);
  }

  /** Remembers where the result of a task this process holds should go. */
  rememberReplyTo(id: string, replyTo: string | undefined): void {
    if (!replyTo) return;
    this.#replyTos.delete(id);
    this.#replyTos.set(id, replyTo);
    if (this.#replyTos.size > REMEMBERED_REPLY_TOS) this.#replyTos.delete(this.#replyTos.keys().next().value!);
  }

  /**
   * Sends `settlement` to the task's publisher, resolving once RabbitMQ confirmed it. It is kept
   * here too when this process published the task, or when it has an idempotency key (claims
   * need it); a worker does not hoard the results of other processes' tasks, nor of tasks whose
   * producer asked for none (`replies: false`). Undefined when nothing had to be sent (no
   * promise to wait for on the ack path of a task nobody awaits).
   */
  deliver(settlement: Settlement, replyTo: string | undefined, via?: Session): Promise<void> | undefined {
    const to = replyTo ?? this.#replyTos.get(settlement.record.id);
    if (via && via !== this.link.current) throw new LeaseLostError(settlement.record.id);
    if (to === this.replyQueue || settlement.record.idempotencyKey !== null) this.#local.storeNow(settlement);
    this.#replyTos.delete(settlement.record.id);
    if (!to || to === this.replyQueue) return undefined;
    const body = Buffer.from(JSON.stringify(settlement.record));
    const props: Options.Publish = {
      persistent: true,
      contentType: 'application/json',
      correlationId: settlement.record.id,
      expiration: String(settlement.ttlMs),
      headers: { [H.ttlMs]: settlement.ttlMs, [H.keyTtlMs]: settlement.keyTtlMs },
      // A client that is gone for good has no queue: its result has nobody to go to (no mandatory).
    };
    if (!via) return this.publisher.publish({ queue: to, body, props, mandatory: false });
    return this.#publishOn(via, to, body, props, settlement.record.id);
  }

  /**
   * Publishes a delivery's result on the session that received the delivery, confirmed, and never
   * anywhere else: the Publisher would send it again on the next session if this one died, and a
   * result must not outlive the lease it was computed under (issue 8, defect 3). A session lost
   * before the confirm rejects it with LeaseLostError (RabbitMQ redelivers the task; its next owner
   * sends the result).
   */
  #publishOn(s: Session, queue: string, body: Buffer, props: Options.Publish, id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let pending = this.#unconfirmed.get(s);
      if (!pending) this.#unconfirmed.set(s, (pending = new Set()));
      const done = (err?: Error) => {
        pending.delete(fail);
        if (err) reject(err);
        else resolve();
      };
      const fail = () => done(new LeaseLostError(id));
      pending.add(fail);
      try {
        s.pub.publish('', queue, body, props, (err) => {
          if (!err) done();
          else done(/closed/i.test(String(err.message ?? err)) ? new LeaseLostError(id) : new BackendError(`RabbitMQ did not confirm the result of task ${id}: ${String(err.message ?? err)}`));
        });
      } catch {
        fail(); // the channel is closing under us
      }
    });
  }

  /** A task this process published with its reply queue: its result will come here. */
  notePublished(id: string): void {
    this.#published.add(id);
    if (this.#published.size > REMEMBERED_PUBLISHED) this.#published.delete(this.#published.values().next().value!);
  }

  /** Only results of tasks this process published (or settled) ever reach it. */
  knows(ref: TaskRef): boolean {
    return this.#published.has(ref.id) || this.#local.getNow(ref) !== null;
  }

  /** Drops the id's result kept in this process (a redriven dead letter runs again and stores anew). */
  forgetNow(ref: TaskRef): void {
    this.#local.forgetNow(ref);
  }

  /** `forgetNow`, only for an outcome stored at or before `at` (the dead letter's burial), not a newer one. */
  forgetOutcomeBefore(ref: TaskRef, at: number): void {
    const record = this.#local.getNow(ref);
    if (record && record.finishedAt <= at) this.#local.forgetNow(ref);
  }

  async forget(refs: readonly TaskRef[]): Promise<void> {
    for (const ref of refs) this.forgetNow(ref);
  }

  /** True when this process already holds a final record for the task. */
  known(ref: TaskRef): boolean {
    return this.#local.getNow(ref) !== null;
  }

  async store(settlement: Settlement, options: StoreOptions = {}): Promise<boolean> {
    if (options.owner !== undefined) {
      if (!this.#local.holdsTask(settlement.record, options.owner)) return false;
      await this.#local.releaseTask(settlement.record, options.owner);
    }
    await this.deliver(settlement, undefined);
    return true;
  }

  async get(ref: TaskRef): Promise<TaskResult | null> {
    return this.#local.getNow(ref);
  }

  async wait(ref: TaskRef, options: { timeoutMs: number; signal?: AbortSignal }): Promise<TaskResult | null> {
    await this.listen();
    return this.#local.wait(ref, options);
  }

  claimKey(ref: KeyRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    return this.#local.claimKey(ref, owner, leaseMs);
  }

  releaseKey(ref: KeyRef, owner: string): Promise<void> {
    return this.#local.releaseKey(ref, owner);
  }

  claimTask(ref: TaskRef, owner: string, leaseMs: number): Promise<KeyClaim> {
    return this.#local.claimTask(ref, owner, leaseMs);
  }

  releaseTask(ref: TaskRef, owner: string): Promise<void> {
    return this.#local.releaseTask(ref, owner);
  }

  reserveKey(ref: KeyRef, taskId: string, ttlMs: number): Promise<string> {
    return this.#local.reserveKey(ref, taskId, ttlMs);
  }

  unreserveKey(ref: KeyRef, taskId: string): Promise<void> {
    return this.#local.unreserveKey(ref, taskId);
  }

  async close(): Promise<void> {
    await this.#local.close();
  }
}

