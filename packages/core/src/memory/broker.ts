import { randomUUID } from 'node:crypto';
import { DEFAULT_BROKER_OPTIONS, peekedMessages, peekOptions, type Broker, type BrokerOptions, type DeadLetter, type Delivery, type FetchRequest, type PeekOptions, type Published, type PublishOptions, type QueueStats, type RedriveResult } from '../broker.js';
import { encodeMessage, parseMessage, type TaskMessage } from '../envelope.js';
import { DEAD_LETTER_NOT_FOUND, DEAD_LETTER_QUEUED, redriveMessage } from '../redrive.js';
import { BackendError, LeaseLostError, type ErrorInfo } from '../errors.js';
import type { Settlement, TaskRef } from '../results.js';
import { assertQueueName } from '../names.js';
import { MemoryQueue, type Entry } from './queue.js';
import { MemoryResultBackend } from './results.js';

/** How long the id of a task acked without a result still blocks a re-publish (as Redis's tombstones). */
const TOMBSTONE_MS = 24 * 3_600_000;
const TOMBSTONE_SWEEP_AT = 100_000;

interface Waiter {
  queues: readonly string[];
  wake: () => void;
}

/**
 * The embedded broker (`memory://`): the full contract in one process, for development, demos and
 * users' own tests.
 * 1. Keeps messages as JSON text, so what runs is what a real broker would carry.
 * 2. Leases, fencing tokens, delays, priorities, dead letters and stats, as the contract states;
 *    counts lease lapses per message and serves a reclaimed message ahead of its priority's backlog;
 *    keeps dead letters within `BrokerOptions.deadLetters` (count and age).
 * 3. Blocks fetches on an in-process wake-up (publish, release, due time), never polling.
 * 4. Holds its own result store; acks with a settlement write it in the same synchronous step.
 * 5. Redrives, discards and purges (rules 8-10) in synchronous steps.
 * 6. Lists waiting messages without taking them (`peek`).
 */
export class MemoryBroker implements Broker {
  readonly capabilities = { delays: true, priorities: true, deadLetter: true, cluster: false, taskStates: true, sharedDedup: true, deadLetterOrder: 'newest' as const };
  readonly results = new MemoryResultBackend();
  readonly #queues = new Map<string, MemoryQueue>();
  readonly #waiters = new Set<Waiter>();
  /** Ids acked without a stored result, so a re-publish of the same id still creates nothing. */
  readonly #tombstones = new Map<string, number>();
  #rotation = 0;
  #closed = false;

  constructor(readonly options: BrokerOptions = DEFAULT_BROKER_OPTIONS) {}

  async publish(messages: readonly TaskMessage[], { keyTtlMs }: PublishOptions): Promise<Published[]> {
    this.#assertOpen();
    const now = Date.now();
    // Encoded (and size-checked) before anything is stored: an oversized message fails the whole call.
    const raws = messages.map((message) => encodeMessage(message, this.options.maxMessageBytes));
    const out = messages.map((message, i): Published => {
      const queue = this.#queue(message.queue);
      if (queue.entries.has(message.id) || this.results.getNow(message) || this.#isTombstoned(message, now)) return { id: message.id, duplicate: true };
      if (message.idempotencyKey !== null) {
        const owner = this.results.reserveKeyNow({ queue: message.queue, key: message.idempotencyKey }, message.id, keyTtlMs);
        if (owner !== message.id) return { id: owner, duplicate: true };
      }
      const entry: Entry = { id: message.id, raw: raws[i]!, priority: message.priority, state: 'pending', token: null, leaseUntil: 0, lapses: 0 };
      queue.entries.set(entry.id, entry);
      queue.enqueue(entry, message.eta ?? now, now);
      return { id: message.id, duplicate: false };
    });
    this.#wakeAll();
    return out;
  }

  /** Puts raw text on a queue as if it came off the wire (used to test malformed messages). */
  injectRaw(queue: string, raw: string): void {
    const id = `raw-${randomUUID()}`;
    const q = this.#queue(queue);
    const entry: Entry = { id, raw, priority: 0, state: 'pending', token: null, leaseUntil: 0, lapses: 0 };
    q.entries.set(id, entry);
    q.enqueue(entry, 0, 0);
    this.#wakeAll();
  }

  async fetch(request: FetchRequest): Promise<Delivery[]> {
    this.#assertOpen();
    const deadline = Date.now() + request.waitMs;
    for (;;) {
      const taken = this.#take(request);
      if (taken.length > 0 || request.signal?.aborted) return taken;
      this.#assertOpen();
      const now = Date.now();
      if (now >= deadline) return taken;
      const dueAt = Math.min(deadline, ...request.queues.map((q) => this.#queue(q).nextDue()));
      await this.#sleep(request, Math.max(0, dueAt - now));
    }
  }

  async renew(deliveries: readonly Delivery[], leaseMs: number): Promise<boolean[]> {
    const now = Date.now();
    return deliveries.map((d) => {
      const entry = this.#owned(d);
      if (entry) entry.leaseUntil = now + leaseMs;
      return entry !== undefined;
    });
  }

  async state(ref: TaskRef): Promise<'pending' | 'scheduled' | 'active' | 'retrying' | null> {
    return this.#queues.get(ref.queue)?.entries.get(ref.id)?.state ?? null;
  }

  async stats(queue: string): Promise<QueueStats> {
    const q = this.#queue(queue);
    const now = Date.now();
    q.promote(now);
    return { queue, ready: q.readyCount, delayed: q.delayedCount, inFlight: q.inFlight.size, dead: q.deadCount(now), completed: q.completed, failed: q.failed };
  }

  async message(ref: TaskRef): Promise<TaskMessage | null> {
    const entry = this.#queues.get(ref.queue)?.entries.get(ref.id);
    const parsed = entry ? parseMessage(entry.raw, { queue: ref.queue }) : null;
    return parsed?.ok ? parsed.message : null;
  }

  /** Due delayed messages and lapsed leases are made ready first (as `stats` does), so the list is what a fetch would take. */
  async peek(queue: string, options: PeekOptions): Promise<TaskMessage[]> {
    const { state, limit } = peekOptions(options);
    const q = this.#queue(queue);
    q.promote(Date.now());
    const entries = state === 'ready' ? q.peekReady(limit).map((e) => ({ raw: e.raw })) : q.peekDelayed(limit).map(({ at, value }) => ({ raw: value.raw, dueAt: at }));
    return peekedMessages(queue, entries, this.options.maxMessageBytes);
  }

  async deadLetters(queue: string, limit = 100): Promise<DeadLetter[]> {
    return this.#queue(queue).deadLetters(Date.now(), limit);
  }

  /** Rule 8. Synchronous per letter, so each move is one step: no crash can split it. */
  async redrive(queue: string, options: { ids?: readonly string[] } = {}): Promise<RedriveResult> {
    this.#assertOpen();
    const q = this.#queue(queue);
    const now = Date.now();
    const out: RedriveResult = { redriven: [], refused: [] };
    for (const id of options.ids ?? q.deadIds(now)) {
      const letter = q.deadLetter(id, now);
      const next = letter ? redriveMessage(letter, queue, this.options.maxMessageBytes) : { ok: false as const, reason: DEAD_LETTER_NOT_FOUND };
      if (!next.ok) {
        out.refused.push({ id, reason: next.reason });
        continue;
      }
      if (q.entries.has(next.message.id)) {
        out.refused.push({ id, reason: DEAD_LETTER_QUEUED });
        continue;
      }
      q.unbury(id);
      // Whatever made the id "seen" goes, so the new run is delivered and its outcome stored.
      this.results.forgetNow(next.message);
      this.#tombstones.delete(`${queue}\u0000${next.message.id}`);
      const entry: Entry = { id: next.message.id, raw: next.raw, priority: next.message.priority, state: 'pending', token: null, leaseUntil: 0, lapses: 0 };
      q.entries.set(entry.id, entry);
      q.enqueue(entry, now, now);
      out.redriven.push(id);
    }
    if (out.redriven.length > 0) this.#wakeAll();
    return out;
  }

  async discard(queue: string, { ids }: { ids: readonly string[] }): Promise<number> {
    this.#assertOpen();
    const q = this.#queue(queue);
    return ids.filter((id) => q.unbury(id)).length;
  }

  async purge(queue: string): Promise<number> {
    this.#assertOpen();
    const q = this.#queue(queue);
    q.promote(Date.now());
    const purged = q.purge();
    // A key still pointing at a purged task would make a new enqueue a "duplicate" of a task that never runs.
    for (const entry of purged) {
      const parsed = parseMessage(entry.raw);
      if (parsed.ok && parsed.message.idempotencyKey !== null) this.results.unreserveKeyNow({ queue, key: parsed.message.idempotencyKey }, entry.id);
    }
    return purged.length;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeAll();
    await this.results.close();
  }

  #take({ queues, max, leaseMs }: FetchRequest): Delivery[] {
    const now = Date.now();
    const qs = queues.map((name) => this.#queue(name));
    for (const q of qs) q.promote(now);
    const out: Delivery[] = [];
    // Queues are of equal standing (rule 2): one entry from each in turn, starting from a rotating
    // queue, so a queue full of priority-9 work cannot starve a quieter one. Priority orders
    // within a queue only. (Picking the most urgent head across queues starved the others.)
    const start = this.#rotation++ % qs.length;
    for (let k = start, empty = 0; out.length < max && empty < qs.length; k++) {
      const q = qs[k % qs.length]!;
      const entry = q.take();
      if (!entry) {
        empty++;
        continue;
      }
      empty = 0;
      const parsed = parseMessage(entry.raw, { queue: q.name, maxBytes: this.options.maxMessageBytes });
      if (!parsed.ok) {
        q.remove(entry);
        q.bury(entry.id, entry.raw, parsed.reason, null, now);
        continue;
      }
      entry.state = 'active';
      entry.token = randomUUID();
      entry.leaseUntil = now + leaseMs;
      q.inFlight.set(entry.id, entry);
      out.push(new MemoryDelivery(this, parsed.message, entry.token, entry.lapses));
    }
    return out;
  }

  #sleep(request: FetchRequest, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = { queues: request.queues, wake: () => done() };
      const done = () => {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', done);
        this.#waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(done, ms);
      request.signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(waiter);
    });
  }

  #wakeAll(): void {
    for (const waiter of [...this.#waiters]) waiter.wake();
  }

  #tombstone(message: TaskMessage, now: number): void {
    if (this.#tombstones.size >= TOMBSTONE_SWEEP_AT) {
      for (const [k, until] of this.#tombstones) if (until <= now) this.#tombstones.delete(k);
    }
    this.#tombstones.set(`${message.queue}\u0000${message.id}`, now + TOMBSTONE_MS);
  }

  #assertOpen(): void {
    if (this.#closed) throw new BackendError('the memory broker is closed: open a new app (or broker) to go on');
  }

  #isTombstoned(message: TaskMessage, now: number): boolean {
    const key = `${message.queue}\u0000${message.id}`;
    const until = this.#tombstones.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#tombstones.delete(key);
    return false;
  }

  #queue(name: string): MemoryQueue {
    let q = this.#queues.get(name);
    if (!q) this.#queues.set(name, (q = new MemoryQueue(assertQueueName(name), this.options.deadLetters)));
    return q;
  }

  #owned(d: Delivery): Entry | undefined {
    const entry = this.#queues.get(d.message.queue)?.inFlight.get(d.message.id);
    return entry && entry.token === d.token ? entry : undefined;
  }

  /** @internal settlement steps for MemoryDelivery; each is fenced by the delivery's token. */
  settle(d: Delivery, step: Settle): void {
    const entry = this.#owned(d);
    if (!entry) throw new LeaseLostError(d.message.id);
    const q = this.#queue(d.message.queue);
    const now = Date.now();
    switch (step.kind) {
      case 'ack':
        q.remove(entry);
        if (step.settlement) this.results.storeNow(step.settlement);
        else this.#tombstone(d.message, now);
        if (!step.settlement || step.settlement.record.state === 'succeeded') q.completed++;
        else q.failed++;
        break;
      case 'dead':
        q.remove(entry);
        if (step.settlement) this.results.storeNow(step.settlement);
        q.bury(entry.id, entry.raw, step.reason, step.error, now);
        break;
      case 'retry': {
        entry.raw = encodeMessage(step.next);
        // The next attempt's number already counts this attempt's lapses (core's `attemptOf`).
        entry.lapses = 0;
        q.enqueue(entry, step.at, now, true);
        break;
      }
      case 'release':
        q.enqueue(entry, step.at ?? now, now);
        break;
    }
    this.#wakeAll();
  }
}

type Settle =
  | { kind: 'ack'; settlement: Settlement | undefined }
  | { kind: 'dead'; reason: string; settlement: Settlement | undefined; error: ErrorInfo | null }
  | { kind: 'retry'; next: TaskMessage; at: number }
  | { kind: 'release'; at: number | undefined };

class MemoryDelivery implements Delivery {
  constructor(
    readonly broker: MemoryBroker,
    readonly message: TaskMessage,
    readonly token: string,
    readonly lapses: number,
  ) {}

  async ack(settlement?: Settlement): Promise<void> {
    this.broker.settle(this, { kind: 'ack', settlement });
  }

  async retry(next: TaskMessage, at: number): Promise<void> {
    this.broker.settle(this, { kind: 'retry', next, at });
  }

  async deadLetter(reason: string, settlement?: Settlement, error?: ErrorInfo | null): Promise<void> {
    this.broker.settle(this, { kind: 'dead', reason, settlement, error: error ?? settlement?.record.error ?? null });
  }

  async release(at?: number): Promise<void> {
    this.broker.settle(this, { kind: 'release', at });
  }
}
