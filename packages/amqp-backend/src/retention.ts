import type { Logger } from '@celeriac/core';
import type { Link } from './link.js';
import { deadQueue, H } from './names.js';

export interface RetentionLimits {
  maxCount: number;
  maxAgeMs: number;
}

/**
 * Dead-letter retention (`BrokerOptions.deadLetters`) for `<queue>:dead`.
 * 1. A dead queue declared by this version carries it as queue arguments — `x-max-length`
 *    (RabbitMQ drops the oldest beyond it) and `x-message-ttl` (age since dead-lettering) — so
 *    RabbitMQ enforces it with no client work.
 * 2. A dead queue that exists with other arguments (declared by an older celeriac, or with other
 *    limits) cannot be re-declared: RabbitMQ refuses with PRECONDITION_FAILED and nothing can
 *    change a queue's arguments in place. It is left as it is, and trimmed here after each burial
 *    instead: the oldest beyond `maxCount`, then any older than `maxAgeMs` (by the dead-at header),
 *    taken from the head with basic.get + ack. An operator can move to (1) by applying a policy
 *    (`rabbitmqctl set_policy … '{"max-length":…,"message-ttl":…}'`) or deleting the queue.
 * One trim per queue at a time; burials during a trim ask for one more pass.
 */
export class Retention {
  readonly #byClient = new Set<string>();
  readonly #running = new Map<string, { again: boolean }>();

  constructor(
    private readonly link: Link,
    readonly limits: RetentionLimits,
    private readonly logger: Logger,
  ) {}

  /** The arguments a new dead queue is declared with. */
  arguments(): Record<string, number> {
    return { 'x-max-length': this.limits.maxCount, 'x-message-ttl': this.limits.maxAgeMs };
  }

  /** The dead queue of `queue` exists with other arguments: trim it from here. */
  trimByClient(queue: string): void {
    if (this.#byClient.has(queue)) return;
    this.#byClient.add(queue);
    this.logger.warn(
      { queue: deadQueue(queue), ...this.limits },
      'dead-letter queue exists with other arguments (older celeriac or other limits): retention is applied by this client after each dead letter; set a RabbitMQ policy or delete the queue to have the broker apply it',
    );
  }

  /** After a dead letter landed: trims the queue if the broker does not. */
  buried(queue: string): Promise<void> | undefined {
    if (!this.#byClient.has(queue)) return undefined;
    const running = this.#running.get(queue);
    if (running) {
      running.again = true;
      return undefined;
    }
    const state = { again: false };
    this.#running.set(queue, state);
    const loop = async () => {
      try {
        do {
          state.again = false;
          await this.trim(queue);
        } while (state.again);
      } finally {
        this.#running.delete(queue);
      }
    };
    return loop().catch((err: Error) => this.logger.warn({ queue: deadQueue(queue), err: err.message }, 'could not trim the dead-letter queue; will try after the next dead letter'));
  }

  /** Removes the oldest dead letters beyond `maxCount`, then those older than `maxAgeMs`. */
  async trim(queue: string): Promise<number> {
    const name = deadQueue(queue);
    return this.link.withChannel(async (ch) => {
      let removed = 0;
      const { messageCount } = await ch.checkQueue(name);
      for (let over = messageCount - this.limits.maxCount; over > 0; over--) {
        const msg = await ch.get(name, { noAck: true });
        if (!msg) break;
        removed++;
      }
      const oldest = Date.now() - this.limits.maxAgeMs;
      for (;;) {
        const msg = await ch.get(name, { noAck: false });
        if (!msg) break;
        const at = Number(msg.properties.headers?.[H.deadAt] ?? NaN);
        if (!(at < oldest)) {
          ch.nack(msg, false, true); // back at the head, where it was
          break;
        }
        ch.ack(msg);
        removed++;
      }
      return removed;
    });
  }
}
