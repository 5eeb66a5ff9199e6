import { encodeMessage, type Published, type TaskMessage } from '@celeriac/core';
import type { ProducerLink } from './producer.js';
import type { KeyCache, QueueKeys } from './keys.js';

/** Most messages in one publish script call (its batch limit; bigger batches are split and pipelined). */
const PUBLISH_CHUNK = 1_000;
/** Fields per message in the publish script's ARGV. */
const FIELDS = 5;

interface Batch {
  keys: QueueKeys;
  keyTtlMs: number;
  args: (string | number)[];
  sinks: { done: (p: Published) => void; fail: (err: Error) => void }[];
}

/**
 * Coalesces publishes into few script calls.
 * 1. Every message published in one burst of promise callbacks (a bulk enqueue, or many one-by-one
 *    enqueues from concurrent requests) joins one batch per queue.
 * 2. Sends each batch as `publish` script calls of up to 1,000 messages; dedup by id and key
 *    happens in the script, so a batch behaves exactly like the same publishes one after another.
 * 3. Gives every caller its own results, in its own order.
 * 4. Publishes through the ProducerLink: a publish settles within a bound while Redis is
 *    unreachable, and is never sent after it was rejected.
 */
export class Publisher {
  readonly #link: ProducerLink;
  readonly #keys: KeyCache;
  #batches = new Map<string, Batch>();
  #scheduled = false;

  constructor(
    link: ProducerLink,
    keys: KeyCache,
    private readonly maxMessageBytes: number,
  ) {
    this.#link = link;
    this.#keys = keys;
  }

  publish(messages: readonly TaskMessage[], keyTtlMs: number): Promise<Published[]> {
    if (messages.length === 0) return Promise.resolve([]);
    // Encoded (and size-checked) before any is queued: an oversized one fails the whole publish.
    let raws: string[];
    try {
      raws = messages.map((m) => encodeMessage(m, this.maxMessageBytes));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      const out = new Array<Published>(messages.length);
      let left = messages.length;
      let failed = false;
      const fail = (err: Error) => {
        if (!failed) reject(err);
        failed = true;
      };
      messages.forEach((m, i) => {
        const batch = this.#batch(m.queue, Math.ceil(keyTtlMs));
        batch.args.push(m.id, raws[i]!, m.priority, m.eta ?? '', m.idempotencyKey ?? '');
        batch.sinks.push({
          done: (p) => {
            out[i] = p;
            if (--left === 0 && !failed) resolve(out);
          },
          fail,
        });
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        process.nextTick(() => this.#flush());
      }
    });
  }

  #batch(queue: string, keyTtlMs: number): Batch {
    const id = `${queue}\n${keyTtlMs}`;
    let batch = this.#batches.get(id);
    if (!batch) this.#batches.set(id, (batch = { keys: this.#keys.of(queue), keyTtlMs, args: [], sinks: [] }));
    return batch;
  }

  #flush(): void {
    this.#scheduled = false;
    const batches = this.#batches;
    this.#batches = new Map();
    for (const { keys, keyTtlMs, args, sinks } of batches.values()) {
      for (let start = 0; start < sinks.length; start += PUBLISH_CHUNK) {
        const chunk = sinks.slice(start, start + PUBLISH_CHUNK);
        const chunkArgs = args.slice(start * FIELDS, (start + PUBLISH_CHUNK) * FIELDS);
        // Our clock's reading goes with the etas, so the script can move them onto the server's clock.
        this.#link.run('publish', keys.main, [keys.base, keyTtlMs, Date.now(), ...chunkArgs], `publishing ${chunk.length} message(s) to queue ${keys.queue}`).then(
          (reply) => {
            const r = reply as (string | number)[];
            chunk.forEach((sink, n) => sink.done({ id: r[2 * n] as string, duplicate: r[2 * n + 1] === 1 }));
          },
          (err: Error) => {
            for (const sink of chunk) sink.fail(err);
          },
        );
      }
    }
  }
}
