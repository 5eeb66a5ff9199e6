import type { Coordination } from './coordination.js';
import type { ErrorInfo } from './errors.js';

/** Where a task lives: results and idempotency records are scoped by queue (one hash slot per queue). */
export interface TaskRef {
  id: string;
  queue: string;
}

export type FinalState = 'succeeded' | 'failed' | 'expired' | 'revoked';
export type TaskState = 'pending' | 'scheduled' | 'active' | 'retrying' | FinalState;

/** The final outcome of a task, as stored and returned by `handle.result()`. JSON only. */
export interface TaskResult {
  id: string;
  queue: string;
  task: string;
  state: FinalState;
  /** The handler's return value when `state` is `succeeded`. */
  value?: unknown;
  /** The last error when the task did not succeed. */
  error?: ErrorInfo;
  attempts: number;
  finishedAt: number;
  idempotencyKey: string | null;
  /**
   * The task's payload, as the last attempt received it (for inspection), where the app's
   * `keepPayload` keeps it (default: for failed, expired and revoked tasks only). Absent in
   * records older than 0.2.
   */
  payload?: unknown;
  /** Set when `keepPayload` would keep the payload but did not: its JSON exceeds `MAX_KEPT_PAYLOAD_BYTES`. */
  payloadOmitted?: 'too large';
  /** When the task was first enqueued (its message's `createdAt`). */
  enqueuedAt?: number;
  /** When the last attempt started. */
  startedAt?: number;
  /** The id of the worker that ran the last attempt (as the worker registry names it), when a worker ran it. */
  worker?: string;
}

/** A final outcome to store, with how long to keep it and its idempotency record. */
export interface Settlement {
  record: TaskResult;
  /** How long `record` is kept, by task id. */
  ttlMs: number;
  /** How long the idempotency key's record (key → task id and outcome) is kept; outlives `ttlMs`. */
  keyTtlMs: number;
}

export type KeyClaim =
  /** The caller holds the key until it stores a settlement, releases it, or the lease runs out. */
  | { status: 'acquired' }
  /** The key already has a stored success: do not run the handler again. */
  | { status: 'done'; record: TaskResult }
  /** Another delivery holds the key right now: wait or yield, do not run. */
  | { status: 'busy' };

export interface ResultBackendCapabilities {
  /** `wait()` is woken by the store (pub/sub, blocking read, in-process event), not by polling. */
  push: boolean;
  /**
   * Records, claims, reservations and marks are seen by every process that opens the same store
   * (Redis). False where they hold within this process only (memory, RabbitMQ's reply queues):
   * deduplication across producers and a single beat across schedulers cannot be promised there.
   */
  shared: boolean;
}

export interface StoreOptions {
  /**
   * Fences the write: it takes effect only while `owner` holds the task's claim (`claimTask`),
   * and releases that claim. Used where the store is apart from the broker, so a delivery whose
   * lease moved on (a stale owner) cannot store its outcome over the new owner's.
   */
  owner?: string;
}

/**
 * Stores final outcomes and idempotency records.
 *
 * Rules every result backend keeps:
 * 1. `store` writes the record under its task id for `ttlMs`; when the record has an idempotency key
 *    it also writes the key's record (task id + outcome) for `keyTtlMs` and releases any claim on it.
 * 2. A stored `succeeded` record is final: a later `store` for the same id never replaces it.
 * 3. `wait` resolves as soon as a record for the id is stored (or at once if one exists), and with
 *    `null` after `timeoutMs`; backends with `capabilities.push` must not poll to do so.
 * 4. `claimKey` is a lease: the same owner may call it again to extend it; a different owner gets
 *    `busy` while it is held, `done` once a success is stored under the key. Where the store has
 *    `coordination`, the lease is its semaphore `key:<key>` of the queue's scope with a limit of 1
 *    (one lease mechanism for the whole store), and storing an outcome under the key frees it.
 * 5. `claimTask` is the same lease on a task id: `done` once any final record is stored for the id,
 *    `busy` while another owner holds it. `store(s, { owner })` writes only while `owner` holds that
 *    claim (else resolves `false`, writing nothing) and releases it.
 * 6. `reserveKey` points a key at its first task id (for `ttlMs`) and returns the owner's id: the
 *    given one when it was free, the earlier one when the key already pointed at a live task.
 * 7. `unreserveKey(ref, taskId)` undoes a reservation whose publish failed: a compare-and-delete that
 *    frees the key only while it still points at `taskId` and no outcome is stored under it; for
 *    any other task id (or once an outcome is stored) it changes nothing. A claim held on the key
 *    is kept.
 * 8. `forget` removes a task's final record and claim: `get` then answers null, `claimTask` acquires.
 */
export interface ResultBackend {
  readonly capabilities: ResultBackendCapabilities;
  /** Resolves `true` when written or kept (rule 2), `false` when fenced out (rule 5). */
  store(settlement: Settlement, options?: StoreOptions): Promise<boolean>;
  get(ref: TaskRef): Promise<TaskResult | null>;
  wait(ref: TaskRef, options: { timeoutMs: number; signal?: AbortSignal }): Promise<TaskResult | null>;
  claimKey(ref: KeyRef, owner: string, leaseMs: number): Promise<KeyClaim>;
  releaseKey(ref: KeyRef, owner: string): Promise<void>;
  claimTask(ref: TaskRef, owner: string, leaseMs: number): Promise<KeyClaim>;
  /** Ends `owner`'s task claim at once (a retry or a release must not wait for it to lapse); a no-op for another owner. */
  releaseTask(ref: TaskRef, owner: string): Promise<void>;
  reserveKey(ref: KeyRef, taskId: string, ttlMs: number): Promise<string>;
  /** Rule 7: a publish that failed gives its key back, so a later enqueue with the key publishes again. */
  unreserveKey(ref: KeyRef, taskId: string): Promise<void>;
  /**
   * Rule 8: removes the final records of these tasks (and their task claims), so a redriven dead
   * letter runs again where the store is apart from the broker (`claimTask` would say `done`).
   */
  forget(refs: readonly TaskRef[]): Promise<void>;
  /**
   * False when this store can never learn the task's outcome (RabbitMQ alone: a task enqueued by
   * another process, whose result goes to that process); handles then fail with a clear error
   * instead of reporting `pending` forever. Absent: every task's outcome can be known.
   */
  knows?(ref: TaskRef): boolean;
  /** Durable marks, for the scheduler's last-run times; absent where the store cannot keep them. */
  readonly marks?: MarkStore;
  /**
   * Shared state for the control plane (see `Coordination`); `null` where the store cannot keep
   * it (RabbitMQ's reply queues): the control features then fail at once, naming the fix.
   */
  readonly coordination: Coordination | null;
  close(): Promise<void>;
}

/** Named monotonic timestamps (epoch ms) that survive process restarts. */
export interface MarkStore {
  getMark(name: string): Promise<number | null>;
  /** Raises the mark to `at` unless it is already higher (atomically); resolves with the mark after the call. */
  advanceMark(name: string, at: number): Promise<number>;
}

export interface KeyRef {
  queue: string;
  key: string;
}

/**
 * The store as the control plane sees it: results, claims, marks and `coordination` (one
 * contract; `ResultBackend` is its older name and stays).
 */
export type Store = ResultBackend;
