import { parseMessage, type TaskMessage } from './envelope.js';
import { ValidationError, type ErrorInfo } from './errors.js';
import type { ResultBackend, Settlement, TaskRef } from './results.js';

/** What a backend can do natively. Callers branch on these, never on the backend's class. */
export interface BrokerCapabilities {
  /** Delayed delivery (`eta`) without a scheduler outside the broker. */
  delays: boolean;
  /** Priorities 0–9 honoured on fetch. */
  priorities: boolean;
  /** A dead-letter place that `deadLetters()` can list. */
  deadLetter: boolean;
  /** Works against a clustered server (all keys of a queue in one hash slot). */
  cluster: boolean;
  /** `state()` knows where a pending task is (ready, delayed, in flight). */
  taskStates: boolean;
  /**
   * `publish` deduplication (by task id and by idempotency key, rule 5) holds across every process
   * using this broker (Redis; memory within its one process). False where it holds per process
   * only (RabbitMQ): with a shared result store, core then reserves keys in the store first.
   */
  sharedDedup: boolean;
  /**
   * Which letters `deadLetters(queue, limit)` returns when the queue holds more than `limit`: the
   * `'newest'` (memory, Redis read from the tail) or the `'oldest'` (RabbitMQ reads its dead-letter
   * queue from the head).
   */
  deadLetterOrder: 'newest' | 'oldest';
}

export interface FetchRequest {
  /** Queues to take from, all of equal standing. */
  queues: readonly string[];
  /** Most deliveries to return (the worker passes its free slots: prefetch is bounded by concurrency). */
  max: number;
  /** Lease length: the delivery is not given to anyone else until it ends or is renewed. */
  leaseMs: number;
  /** How long to block when nothing is ready. Backends block; they do not poll the server. */
  waitMs: number;
  /** Aborting returns the deliveries taken so far (possibly none) promptly. */
  signal?: AbortSignal;
}

export interface PublishOptions {
  /** How long an idempotency key keeps pointing at its first task. */
  keyTtlMs: number;
}

export interface Published {
  /** The id of the task that owns this message: its own, or the first task with the same id or key. */
  id: string;
  /** True when no new task was created (same id already known, or same idempotency key). */
  duplicate: boolean;
}

/**
 * One leased message. The delivery owns its acknowledgement: exactly one of `ack`, `retry`,
 * `deadLetter`, `release` settles it. Each checks the fencing `token`: once the lease was lost
 * (expired and handed to another consumer), every one of them rejects with `LeaseLostError`
 * and changes nothing.
 */
export interface Delivery {
  readonly message: TaskMessage;
  /** Fencing token, unique to this delivery. */
  readonly token: string;
  /**
   * Earlier deliveries of this message's current attempt that ended with no settlement at all:
   * their lease lapsed or their connection dropped (the consumer died, hung, or was cut off —
   * e.g. a handler that crashes its process). 0 normally; `release()` does not count. Core counts
   * each as a spent attempt (see `attemptOf`), so a task that keeps killing its worker is
   * dead-lettered after `maxAttempts` deliveries instead of running forever.
   */
  readonly lapses: number;
  /**
   * Removes the message. With a settlement, a broker whose `results` store is in use writes it in
   * the same atomic step, so an outcome is stored if and only if the ack took effect.
   */
  ack(settlement?: Settlement): Promise<void>;
  /**
   * Replaces the message with `next` (built by core's `nextAttempt`: the attempt number, the
   * last error and the eta are core's rule, not the backend's), ready at epoch ms `at`.
   */
  retry(next: TaskMessage, at: number): Promise<void>;
  /**
   * Moves the message to the dead-letter place with `reason`; stores the settlement as for `ack`.
   * The letter keeps `error` (default: the settlement's), which a caller whose store is apart
   * from the broker passes without a settlement.
   */
  deadLetter(reason: string, settlement?: Settlement, error?: ErrorInfo | null): Promise<void>;
  /** Gives the message back unchanged (same attempt), ready at `at` (default: now). */
  release(at?: number): Promise<void>;
}

export interface QueueStats {
  queue: string;
  ready: number;
  delayed: number;
  inFlight: number;
  dead: number;
  completed: number;
  failed: number;
}

export interface DeadLetter {
  /**
   * Names this dead letter within its queue's dead letters, for `redrive` and `discard`: the task
   * id where the message parses, else an id the backend made (stable while the letter is kept).
   */
  id: string;
  /** The message as it was on the wire (it may not parse: that can be why it is here). */
  raw: string;
  reason: string;
  error: ErrorInfo | null;
  at: number;
}

/**
 * The broker contract. Rules every backend keeps (the conformance suite checks each):
 * 1. At-least-once: a published message is delivered until it is acked, retried, dead-lettered or
 *    released; a crash of its consumer loses nothing (the lease runs out and it is delivered again).
 * 2. Order: higher `priority` first; within a priority, earlier ready time first (a delayed
 *    message is ready from its eta, ahead of messages published after that). Across the queues
 *    of one fetch, no queue starves the others.
 * 3. A message with `eta` in the future is not delivered before `eta`.
 * 4. A delivery's lease lasts `leaseMs` from fetch or the last `renew`; while it lasts nobody else
 *    gets the message; after it lapses the message is delivered again with a new token, and the
 *    old token's settlements reject with `LeaseLostError`.
 * 5. `publish` deduplicates: a message whose id is known, or whose idempotency key (scoped by queue)
 *    maps to a live task id, creates nothing and returns the owner's id with `duplicate: true`.
 * 6. A message that fails validation on fetch is never returned: it goes to the dead-letter place
 *    with the reason.
 * 7. Batching lives here: `publish`, `fetch` and `renew` take many at once, and settlements issued
 *    together may share a round trip.
 * 8. `redrive` moves each chosen dead letter back to its queue as a fresh message: attempt 1, the
 *    same task id, ready at once, `lastError` holding the dead letter's reason (its history), and
 *    removes it from the dead letters — each letter in one step, so a crash neither loses it nor
 *    puts it back twice. It is delivered even though its id was seen before (publish dedup does not
 *    apply), and any final result stored for the id in this broker's own store is removed with it,
 *    so the new run's outcome is stored. A letter whose raw text is not a valid message stays,
 *    refused with the parse error as its reason; an unknown id is refused as `not found`.
 * 9. `discard` removes the named dead letters for good; unknown ids are ignored.
 * 10. `purge` removes the queue's ready and delayed messages (not leased ones, which settle as
 *    usual) and resolves with their number; their ids may be published again.
 * 11. `peek`, where a broker has it, lists without taking: no lease, nothing moved that a fetch
 *    would not move first; `ready` in rule 2's order, `delayed` by due time; leased messages in
 *    neither; a message that fails validation is left out (fetch dead-letters it, rule 6).
 */
export interface Broker {
  readonly capabilities: BrokerCapabilities;
  /** The result store kept in this broker, if any; acks with a settlement write it atomically. */
  readonly results: ResultBackend | null;
  publish(messages: readonly TaskMessage[], options: PublishOptions): Promise<Published[]>;
  fetch(request: FetchRequest): Promise<Delivery[]>;
  /** Extends the leases of many deliveries in one round trip; `false` where the lease was lost. */
  renew(deliveries: readonly Delivery[], leaseMs: number): Promise<boolean[]>;
  /**
   * The message of a task not settled yet (waiting, delayed or running), or null; absent where the
   * broker cannot look a message up by id (RabbitMQ). For `app.inspect.task`.
   */
  message?(ref: TaskRef): Promise<TaskMessage | null>;
  /**
   * Up to `limit` waiting messages of `queue`, without taking them: `ready` in the order a fetch
   * would take them, `delayed` soonest eta first, each with its due time as `eta`. Leased messages
   * are in neither list. Fewer than `limit` may come back although more wait: a backend that
   * copies message bodies into one reply (Redis) stops once it holds `MAX_PEEK_BYTES` (always at
   * least one message), so a listing of big messages cannot stall the server. Absent where the
   * broker cannot list waiting messages without consuming them (RabbitMQ). For
   * `app.inspect.queue` and the dashboard. See `peekOptions`, `peekedMessages`.
   */
  peek?(queue: string, options: PeekOptions): Promise<TaskMessage[]>;
  /** Where a not-yet-final task is, or `null` if the broker does not know it. */
  state(ref: TaskRef): Promise<'pending' | 'scheduled' | 'active' | 'retrying' | null>;
  stats(queue: string): Promise<QueueStats>;
  /**
   * Up to `limit` (default 100) dead letters, oldest first: the most recent ones where the backend
   * can read from the tail (memory, Redis), the oldest where it reads a queue from its head (AMQP).
   * Fewer than `limit` may come back although more are dead: a backend that copies letters into
   * one reply (Redis) or holds them unacked while it lists (AMQP) stops once they reach
   * `MAX_PEEK_BYTES` (always at least one), so a listing of big letters cannot stall the server.
   * Use `deadLetterIds` for a complete list.
   */
  deadLetters(queue: string, limit?: number): Promise<DeadLetter[]>;
  /**
   * The ids of all the queue's dead letters (within retention), oldest first, without their
   * bodies where the backend can (Redis). Absent where `deadLetters(queue, deadLetters.maxCount)`
   * lists them all (memory).
   */
  deadLetterIds?(queue: string): Promise<string[]>;
  /**
   * Puts dead letters back on their queue (rule 8): those named by `ids`, or all of them. Resolves
   * with the ids put back and, for each one that was not, why (not found, or not a message).
   */
  redrive(queue: string, options?: { ids?: readonly string[] }): Promise<RedriveResult>;
  /** Removes the dead letters named by `ids`; resolves with how many it removed (rule 9). */
  discard(queue: string, options: { ids: readonly string[] }): Promise<number>;
  /** Removes every ready and delayed message of the queue (not those leased now); resolves with how many (rule 10). */
  purge(queue: string): Promise<number>;
  close(): Promise<void>;
}

/** Most messages one `peek` lists; a larger limit is cut to this. */
export const MAX_PEEK = 500;

/**
 * The byte budget of one `peek` reply, where a backend copies bodies into it (Redis): it stops
 * once the bodies it holds reach this, after at least one (4 MiB: at most about four messages of
 * the default 1 MiB limit, thousands of small ones).
 */
export const MAX_PEEK_BYTES = 4 * 1024 * 1024;

export interface PeekOptions {
  state: 'ready' | 'delayed';
  /** Most messages to list: an integer ≥ 1 (above `MAX_PEEK`, cut to it). */
  limit: number;
}

/**
 * `peek`'s options, checked (every backend's `peek` starts here; `caller` names the call in the
 * errors, which name the field and what it takes).
 */
export function peekOptions(options: PeekOptions, caller = 'peek'): PeekOptions {
  const { state, limit } = options ?? ({} as Partial<PeekOptions>);
  if (state !== 'ready' && state !== 'delayed') throw new ValidationError('INVALID_OPTIONS', `${caller} state must be "ready" or "delayed" (got ${JSON.stringify(state) ?? 'nothing'})`);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('INVALID_OPTIONS', `${caller} limit must be an integer ≥ 1 (got ${String(limit)})`);
  return { state, limit: Math.min(limit, MAX_PEEK) };
}

/**
 * What a peek lists, from the text a backend holds. A message a fetch would dead-letter (it does
 * not parse, is oversized or names another queue) is left out rather than breaking the listing.
 * `dueAt`, for a delayed message, is when it becomes ready by the broker's clock: it is given as
 * the message's `eta` (a release to later leaves the message's own `eta` behind).
 */
export function peekedMessages(queue: string, entries: Iterable<{ raw: string; dueAt?: number }>, maxBytes: number): TaskMessage[] {
  const out: TaskMessage[] = [];
  for (const { raw, dueAt } of entries) {
    const parsed = parseMessage(raw, { queue, maxBytes });
    if (parsed.ok) out.push(dueAt === undefined ? parsed.message : { ...parsed.message, eta: dueAt });
  }
  return out;
}

export interface RedriveResult {
  redriven: string[];
  refused: { id: string; reason: string }[];
}

/** Limits every backend enforces; `createApp` passes them to `connectBroker`. */
export interface BrokerOptions {
  /** Largest encoded message accepted, in bytes: refused at publish, dead-lettered on arrival. */
  maxMessageBytes: number;
  /** Dead letters kept per queue: beyond `maxCount` the oldest go, and so does any older than `maxAgeMs`. */
  deadLetters: { maxCount: number; maxAgeMs: number };
  /**
   * How long a publish may wait for the broker (the app's `enqueueTimeoutMs`). Past it the backend
   * rejects the publish and never writes it afterwards, so a caller told "timed out" is not
   * surprised by the task running later.
   */
  publishTimeoutMs: number;
}

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  maxMessageBytes: 1024 * 1024,
  deadLetters: { maxCount: 10_000, maxAgeMs: 7 * 24 * 3_600_000 },
  publishTimeoutMs: 10_000,
};
