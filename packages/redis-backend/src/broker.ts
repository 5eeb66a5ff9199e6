import { randomUUID } from 'node:crypto';
import {
  DEFAULT_BROKER_OPTIONS,
  MAX_PEEK_BYTES,
  parseMessage,
  peekedMessages,
  peekOptions,
  type Broker,
  type BrokerOptions,
  type DeadLetter,
  type Delivery,
  type FetchRequest,
  type PeekOptions,
  type Published,
  type PublishOptions,
  type QueueStats,
  type RedriveResult,
  type TaskMessage,
  type TaskRef,
} from '@celeriac/core';
import { quitWithin } from './connection.js';
import { DeadLetters } from './dead.js';
import { ProducerLink } from './producer.js';
import { Fetcher } from './fetcher.js';
import { KeyCache } from './keys.js';
import { Publisher } from './publisher.js';
import { RedisResultBackend } from './results.js';
import { Scripts, type Client } from './scripts.js';
import { RedisDelivery, Settler } from './settler.js';
import type { RedisTarget } from './url.js';

/** Most leases one renew script call extends. */
const RENEW_CHUNK = 500;

const STATES = { p: 'pending', s: 'scheduled', a: 'active', r: 'retrying' } as const;

/**
 * The Redis broker (`redis://`, `rediss://`).
 * 1. Publishes through the Publisher (coalesced, one script call per queue), deduplicating by id
 *    and idempotency key on the server, so a publish resent after a reconnect never creates a
 *    second task.
 * 2. Fetches and settles through the Fetcher and Settler (leased, fenced, batched).
 * 3. Renews many leases per round trip; reports task states and O(1) queue stats; lists waiting
 *    messages without taking them (`peek`, one script call).
 * 4. Keeps each queue's dead letters within `BrokerOptions.deadLetters` (trimmed as they are
 *    pushed, and before they are counted or read); redrives, discards and purges through
 *    DeadLetters (rules 8-10).
 * 5. Holds its result store on the same connection, so acks write results atomically.
 */
export class RedisBroker implements Broker {
  readonly capabilities = { delays: true, priorities: true, deadLetter: true, cluster: true, taskStates: true, sharedDedup: true, deadLetterOrder: 'newest' as const };
  readonly results: RedisResultBackend;
  readonly #client: Client;
  readonly #scripts: Scripts;
  readonly #keys: KeyCache;
  readonly #settler: Settler;
  readonly #fetcher: Fetcher;
  readonly #publisher: Publisher;
  readonly #options: BrokerOptions;
  readonly #producer: ProducerLink;
  readonly #dead: DeadLetters;
  #closing: Promise<void> | undefined;

  constructor(client: Client, target: RedisTarget, options: BrokerOptions = DEFAULT_BROKER_OPTIONS) {
    this.#client = client;
    this.#options = options;
    this.#scripts = new Scripts(client);
    this.#keys = new KeyCache(target.prefix);
    this.#settler = new Settler(this.#scripts, target.tombstoneMs, options.deadLetters);
    this.#producer = new ProducerLink(client, options.publishTimeoutMs);
    this.#publisher = new Publisher(this.#producer, this.#keys, options.maxMessageBytes);
    this.#fetcher = new Fetcher(client, this.#scripts, this.#keys, this.#settler, { cluster: target.cluster, maxMessageBytes: options.maxMessageBytes });
    this.#dead = new DeadLetters(client, this.#scripts, options);
    this.results = new RedisResultBackend(client, this.#scripts, this.#keys, { ownsClient: false, producer: this.#producer });
  }

  publish(messages: readonly TaskMessage[], { keyTtlMs }: PublishOptions): Promise<Published[]> {
    return this.#publisher.publish(messages, keyTtlMs);
  }

  /** Puts raw text on `queue` as if it had come off the wire (for tests of malformed messages). */
  async injectRaw(queue: string, raw: string): Promise<void> {
    const keys = this.#keys.of(queue);
    await this.#scripts.run('publish', keys.main, [keys.base, 1, Date.now(), `raw-${randomUUID()}`, raw, 0, '', '']);
  }

  fetch(request: FetchRequest): Promise<Delivery[]> {
    return this.#fetcher.fetch(request);
  }

  async renew(deliveries: readonly Delivery[], leaseMs: number): Promise<boolean[]> {
    const byQueue = new Map<string, { keys: RedisDelivery['keys']; args: string[]; indexes: number[] }>();
    // Renewals of one queue go in one script call (chunks of RENEW_CHUNK).
    deliveries.forEach((d, i) => {
      const keys = d instanceof RedisDelivery ? d.keys : this.#keys.of(d.message.queue);
      const id = d instanceof RedisDelivery ? d.storedId : d.message.id;
      let group = byQueue.get(keys.base);
      if (!group) byQueue.set(keys.base, (group = { keys, args: [], indexes: [] }));
      group.args.push(id, d.token);
      group.indexes.push(i);
    });
    const out = new Array<boolean>(deliveries.length).fill(false);
    const calls: Promise<void>[] = [];
    for (const { keys, args, indexes } of byQueue.values()) {
      for (let start = 0; start < indexes.length; start += RENEW_CHUNK) {
        const chunk = indexes.slice(start, start + RENEW_CHUNK);
        const pairs = args.slice(2 * start, 2 * (start + RENEW_CHUNK));
        calls.push(
          this.#scripts.run('renew', keys.leaseKeys, [Math.ceil(leaseMs), ...pairs]).then((reply) => {
            chunk.forEach((i, n) => (out[i] = (reply as number[])[n] === 1));
          }),
        );
      }
    }
    await Promise.all(calls);
    return out;
  }

  async message(ref: TaskRef): Promise<TaskMessage | null> {
    const raw = await this.#client.hget(this.#keys.of(ref.queue).main[0]!, ref.id);
    const parsed = raw === null ? null : parseMessage(raw, { queue: ref.queue });
    return parsed?.ok ? parsed.message : null;
  }

  async state(ref: TaskRef): Promise<'pending' | 'scheduled' | 'active' | 'retrying' | null> {
    const code = await this.#client.hget(this.#keys.of(ref.queue).task, ref.id);
    return code ? (STATES[code[0] as keyof typeof STATES] ?? null) : null;
  }

  async stats(queue: string): Promise<QueueStats> {
    const keys = this.#keys.of(queue);
    const [ready, delayed, inFlight, dead, completed, failed] = (await this.#scripts.run('stats', keys.main, [keys.base, ...this.#retention()])) as number[];
    return { queue, ready: ready!, delayed: delayed!, inFlight: inFlight!, dead: dead!, completed: completed!, failed: failed! };
  }

  /** One script call on the queue's keys (one hash slot): lua/peek-7.lua. */
  async peek(queue: string, options: PeekOptions): Promise<TaskMessage[]> {
    const { state, limit } = peekOptions(options);
    const keys = this.#keys.of(queue);
    const reply = (await this.#scripts.run('peek', keys.main, [keys.base, state, limit, MAX_PEEK_BYTES])) as (string | number | null)[];
    const width = state === 'ready' ? 2 : 3;
    const entries: { raw: string; dueAt?: number }[] = [];
    for (let i = 0; i < reply.length; i += width) {
      const raw = reply[i + 1];
      if (typeof raw !== 'string') continue;
      entries.push(state === 'ready' ? { raw } : { raw, dueAt: Number(reply[i + 2]) });
    }
    return peekedMessages(queue, entries, this.#options.maxMessageBytes);
  }

  deadLetters(queue: string, limit = 100): Promise<DeadLetter[]> {
    return this.#dead.list(this.#keys.of(queue), limit);
  }

  deadLetterIds(queue: string): Promise<string[]> {
    return this.#dead.ids(this.#keys.of(queue));
  }

  redrive(queue: string, options: { ids?: readonly string[] } = {}): Promise<RedriveResult> {
    return this.#dead.redrive(this.#keys.of(queue), options.ids);
  }

  discard(queue: string, { ids }: { ids: readonly string[] }): Promise<number> {
    return this.#dead.discard(this.#keys.of(queue), ids);
  }

  purge(queue: string): Promise<number> {
    return this.#dead.purge(this.#keys.of(queue));
  }

  /** Dead-letter retention as script arguments (see lua/lib/dead.lua). */
  #retention(): [number, number] {
    return [this.#options.deadLetters.maxCount, this.#options.deadLetters.maxAgeMs];
  }

  /**
   * Stops fetches, waits for pending settlements (at most CLOSE_DRAIN_MS: the ones still
   * unanswered are rejected), then closes the connections (each QUIT waits at most QUIT_WAIT_MS).
   * Every step has a bound, so a silent connection cannot hold it. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#fetcher.close();
      const drained = await this.#settler.drain();
      await this.results.close();
      await this.#producer.close();
      // A drain cut short means the connection is silent: a QUIT would only wait out its bound.
      if (drained) await quitWithin(this.#client);
      else this.#client.disconnect();
    })();
    return this.#closing;
  }
}
