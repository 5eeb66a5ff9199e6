import { ValidationError } from './errors.js';
import { queueNamePattern } from './names.js';

/**
 * The scope of state that is not any one queue's: the queue index, the worker registry, the
 * control version. `*` is never a queue name, so it cannot collide with one.
 */
export const GLOBAL_SCOPE = '*';

/** A record: a JSON value under `scope` / `kind` / `id`. */
export interface RecordRef {
  /** A queue name, or `GLOBAL_SCOPE`. One scope is one Redis Cluster hash slot. */
  scope: string;
  /** What the record is, e.g. `workers`, `revoked`, `progress`: same alphabet as queue names. */
  kind: string;
  id: string;
}

/** A leased semaphore: at most `limit` holders at a time, each until its lease ends. */
export interface SemaphoreRef {
  scope: string;
  /** 1–512 characters, e.g. `limit:emails.send`. */
  name: string;
}

/** One holder's place in a semaphore, as the worker's lease timer renews it. */
export interface Hold {
  ref: SemaphoreRef;
  holder: string;
}

export interface StoredRecord {
  id: string;
  value: unknown;
}

export interface ListOptions {
  limit?: number;
  /** Latest to expire first (newest first among records of one TTL). */
  latestFirst?: boolean;
}

/** The bound on `listRecords` when the caller gives none. */
export const DEFAULT_LIST_LIMIT = 1_000;

/**
 * The coordination primitives: shared state beside the queue, on which core builds the control
 * plane (revocations, pause flags, the worker registry, progress, queue discovery) and later
 * features (workflows, global limits). A backend implements these and nothing feature-specific;
 * every rule of a feature lives in core. See docs/design/control-plane.md.
 *
 * Rules every implementation keeps (the conformance suite checks each):
 * 1. Every call touches one scope; a scope is one hash slot (Redis Cluster), so each call is atomic.
 * 2. `putRecord` writes a JSON value (replacing any) for `ttlMs`, or until deleted when `ttlMs`
 *    is null; an expired record is never returned. Values come back as a JSON round trip.
 * 3. `getRecords` answers each id in order, `null` for a missing or expired one.
 * 4. `listRecords` returns at most `limit` (default `DEFAULT_LIST_LIMIT`) live records of a kind,
 *    soonest to expire first, records without a TTL last (`latestFirst`: the reverse order, so
 *    for records of one TTL the newest come first); never an expired one.
 * 5. `deleteRecord` resolves `true` when it removed a live record.
 * 6. `acquire` grants a place when `holder` already holds one (extending its lease) or fewer than
 *    `limit` live holders hold one; otherwise `false`. A lease ends at `leaseMs` after its last
 *    grant or renewal, judged by the store's clock, and frees its place by itself.
 * 7. `renew` extends each hold still live and answers, in order, whether it was; a lapsed hold is
 *    not renewed (it may have passed to someone else). `release` frees `holder`'s place at once;
 *    another holder's is untouched.
 * 8. `bumpVersion` raises a scope's version by one and returns it; `version` reads it (0 before
 *    any bump). Versions never go down while the store keeps its data.
 */
export interface Coordination {
  putRecord(ref: RecordRef, value: unknown, ttlMs: number | null): Promise<void>;
  getRecords(scope: string, kind: string, ids: readonly string[]): Promise<unknown[]>;
  listRecords(scope: string, kind: string, options?: ListOptions): Promise<StoredRecord[]>;
  deleteRecord(ref: RecordRef): Promise<boolean>;
  acquire(ref: SemaphoreRef, holder: string, options: { limit: number; leaseMs: number }): Promise<boolean>;
  renew(holds: readonly Hold[], leaseMs: number): Promise<boolean[]>;
  release(ref: SemaphoreRef, holder: string): Promise<void>;
  bumpVersion(scope: string): Promise<number>;
  version(scope: string): Promise<number>;
}

const KIND = queueNamePattern;

/** Checks a scope (a queue name or `GLOBAL_SCOPE`) and a kind or semaphore name: they end up inside store keys. */
export function assertScope(scope: string): string {
  if (scope !== GLOBAL_SCOPE && !queueNamePattern.test(scope)) {
    throw new ValidationError('INVALID_NAME', `invalid store scope ${JSON.stringify(scope)}: use a queue name or GLOBAL_SCOPE ("*")`);
  }
  return scope;
}

export function assertKind(kind: string): string {
  if (!KIND.test(kind)) throw new ValidationError('INVALID_NAME', `invalid record kind ${JSON.stringify(kind)}: use 1–100 characters from A–Z a–z 0–9 _ . -`);
  return kind;
}

/** A `limit` argument as the rules read it. */
export function listLimit(options?: { limit?: number }): number {
  const limit = options?.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('INVALID_OPTIONS', `listRecords limit must be a positive integer, got ${String(limit)}`);
  return limit;
}

/** Semaphore names the store keeps for itself: an idempotency key's claim is `key:<key>`. */
export const RESERVED_SEMAPHORE_PREFIX = 'key:';

/** A semaphore name: any text of 1–512 characters (it follows the scope's hash tag inside a key), not starting with `key:`. */
export function assertSemaphoreName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 512) {
    throw new ValidationError('INVALID_NAME', `invalid semaphore name ${JSON.stringify(name)}: use 1–512 characters`);
  }
  if (name.startsWith(RESERVED_SEMAPHORE_PREFIX)) {
    throw new ValidationError('INVALID_NAME', `invalid semaphore name ${JSON.stringify(name)}: names starting with "${RESERVED_SEMAPHORE_PREFIX}" are the idempotency key claims'`);
  }
  return name;
}

/** An `acquire` call's options, checked once for every backend. */
export function assertSemaphoreOptions({ limit, leaseMs }: { limit: number; leaseMs: number }): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('INVALID_OPTIONS', `semaphore limit must be a positive integer, got ${String(limit)}`);
  if (!(leaseMs >= 1)) throw new ValidationError('INVALID_OPTIONS', `semaphore leaseMs must be at least 1, got ${String(leaseMs)}`);
}

/** A record value as stored: its JSON text (rule 2). Refuses what JSON cannot carry, naming it. */
export function encodeRecord(ref: RecordRef, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new ValidationError('INVALID_PAYLOAD', `record ${ref.kind}/${ref.id} is not JSON: ${String(err)}`);
  }
  if (text === undefined) throw new ValidationError('INVALID_PAYLOAD', `record ${ref.kind}/${ref.id} is not JSON (got ${typeof value})`);
  return text;
}
