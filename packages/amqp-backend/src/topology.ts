import { BackendError } from '@celeriac/core';
import type { Channel, Options } from 'amqplib';
import type { Link } from './link.js';
import type { Retention } from './retention.js';
import { deadQueue, delayLevel, delayQueue, holdQueue, replyQueue, workQueue } from './names.js';

/**
 * Declares the queues celeriac uses, once per process (all durable, so they outlive reconnects).
 * 1. Work queue: classic with `x-max-priority: 9` (the `maxPriority` option), or quorum (`x-queue-type: quorum`) when listed
 *    in `quorumQueues` — quorum queues ignore priorities before RabbitMQ 4.0 (4.x: two levels).
 * 2. Dead queue `<queue>:dead`: where dead letters wait, reason in headers, kept within the
 *    retention limits (see Retention; an existing queue with other arguments is used as it is).
 * 3. Delay ladder `<queue>:delay:<2^k ms>`: no consumers, `x-message-ttl` 2^k, dead-lettering
 *    back to the work queue through the default exchange — delays on a stock RabbitMQ, no plugin.
 * 4. Hold queues for rotated long-running deliveries and the per-client reply queue.
 * A declare that conflicts with an existing queue's arguments is reported, naming the queue.
 */
export class Topology {
  readonly #declared = new Map<string, Promise<void>>();
  /** Names whose declare has completed: the publish fast path skips the await. */
  readonly #done = new Set<string>();

  constructor(
    private readonly link: Link,
    private readonly quorum: ReadonlySet<string>,
    private readonly maxPriority: number,
    private readonly retention: Retention,
  ) {}

  isQuorum(queue: string): boolean {
    return this.quorum.has(queue);
  }

  work(queue: string): Promise<void> {
    const args: Record<string, unknown> = this.quorum.has(queue) ? { 'x-queue-type': 'quorum' } : this.maxPriority > 0 ? { 'x-max-priority': this.maxPriority } : {};
    return this.#declare(workQueue(queue), { durable: true, arguments: args });
  }

  dead(queue: string): Promise<void> {
    const name = deadQueue(queue);
    return this.#declare(name, { durable: true, arguments: { ...this.#typeArgs(queue), ...this.retention.arguments() } }, async (ch) => {
      // Declared before retention existed (or with other limits): keep it, trim it from the client.
      await ch.checkQueue(name);
      this.retention.trimByClient(queue);
    });
  }

  /** The ladder rung for a message due in `remainingMs` (≥ 1); returns the queue's name. */
  async delay(queue: string, remainingMs: number): Promise<string> {
    // The rung dead-letters into the work queue: RabbitMQ drops a dead letter whose target queue
    // does not exist, so a delayed task published before any worker declared it would be lost.
    await this.work(queue);
    const level = delayLevel(remainingMs);
    const name = delayQueue(queue, level);
    await this.#declare(name, {
      durable: true,
      arguments: { 'x-message-ttl': 2 ** level, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': workQueue(queue) },
    });
    return name;
  }

  /**
   * A holding queue for this client's rotated deliveries of `queue`. Its messages have TTL 0 and
   * dead-letter back to the work queue: while this client consumes, a copy is handed over at once;
   * if the client dies, its unacked copies return here, expire immediately, and go back to work.
   * `x-expires` removes the queue itself once the client is long gone.
   */
  hold(queue: string, client: string): Promise<void> {
    return this.#declare(holdQueue(queue, client), {
      durable: true,
      arguments: { 'x-message-ttl': 0, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': workQueue(queue), 'x-expires': 24 * 3_600_000 },
    });
  }

  reply(client: string, expiresMs: number): Promise<void> {
    return this.#declare(replyQueue(client), { durable: true, arguments: { 'x-expires': expiresMs } });
  }

  /** Every AMQP queue this process declared (tests delete them afterwards). */
  names(): string[] {
    return [...this.#declared.keys()];
  }

  /** True once the work queue's declare completed in this process. */
  workReady(queue: string): boolean {
    return this.#done.has(queue);
  }

  /** Forgets a declare (the queue was found missing), so the next use declares it again. */
  forget(name: string): void {
    this.#declared.delete(name);
    this.#done.delete(name);
  }

  #typeArgs(queue: string): Record<string, unknown> {
    return this.quorum.has(queue) ? { 'x-queue-type': 'quorum' } : {};
  }

  /** `onConflict`: run on a fresh channel instead of failing when the queue exists with other arguments. */
  #declare(name: string, options: Options.AssertQueue, onConflict?: (ch: Channel) => Promise<void>): Promise<void> {
    let done = this.#declared.get(name);
    if (!done) {
      done = this.link
        .withChannel(async (ch) => {
          await ch.assertQueue(name, options);
          this.#done.add(name);
        })
        .catch(async (err: Error) => {
          if (!onConflict || !/PRECONDITION_FAILED/.test(err.message)) throw err;
          await this.link.withChannel(onConflict);
          this.#done.add(name);
        })
        .catch((err: Error) => {
          this.#declared.delete(name);
          const hint = /PRECONDITION_FAILED/.test(err.message) ? ' — it exists with other arguments (e.g. classic vs quorum, or a different x-max-priority); delete it or change the quorumQueues option' : '';
          throw new BackendError(`cannot declare AMQP queue "${name}": ${err.message}${hint}`, { cause: err });
        });
      this.#declared.set(name, done);
    }
    return done;
  }
}
