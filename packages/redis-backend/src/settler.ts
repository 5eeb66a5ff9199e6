import { BackendError, LeaseLostError, encodeMessage, type BrokerOptions, type Delivery, type ErrorInfo, type Settlement, type TaskMessage } from '@celeriac/core';
import { CallTokens } from './calls.js';
import type { QueueKeys } from './keys.js';
import type { Scripts } from './scripts.js';

type Op = (string | number)[];

interface Batch {
  keys: QueueKeys;
  /** ttlMs and keyTtlMs of the records in this batch ('' when the operations carry none). */
  ttls: [number | '', number | ''];
  args: Op;
  waiters: { id: string; resolve: () => void; reject: (err: Error) => void }[];
}

/** Most operations in one script call, so a huge batch never stalls the server for long. */
const MAX_OPS_PER_CALL = 500;

/**
 * How long a settle call's answer is remembered for a resend of it (settle-7.lua, "Memo"). ioredis
 * resends a call whose reply was lost once it has reconnected: this covers an outage of minutes.
 * The caller's next call on the queue deletes the memo once the reply has arrived, so the length
 * costs memory only for the last calls before a queue goes quiet.
 */
const MEMO_MS = 5 * 60_000;

/**
 * Longest `drain()` (and so `RedisBroker.close()`) waits for settle calls in flight to answer. A
 * silent connection (a partition that resets nothing) never answers: past this the calls still
 * unanswered are rejected and the broker disconnects. Their outcome is then unknown to this
 * process, but never doubled: a call Redis ran took effect once (its memo answers a resend), one
 * it never saw leaves its lease to lapse, and the task is delivered again with one lapse.
 */
export const CLOSE_DRAIN_MS = 5_000;

/**
 * Coalesces settlements into few round trips.
 * 1. Collects every ack, retry, dead letter and release issued in one burst of promise callbacks.
 * 2. Sends them as one `settle` script call per queue (chunked), fenced by each delivery's token.
 * 3. Resolves each caller on its own: `LeaseLostError` for the ones whose lease was lost. A call
 *    ioredis resends after a reconnect answers what its first execution did (its call token).
 * 4. `drain()` waits for everything submitted, so closing leaves nothing half-done, for at most
 *    CLOSE_DRAIN_MS: then it rejects what is still unanswered (a silent connection), saying so.
 */
export class Settler {
  readonly #scripts: Scripts;
  readonly #tombstoneMs: number;
  /** Dead-letter retention, sent with every call: [maxCount, maxAgeMs]. */
  readonly #dead: [number, number];
  #batches = new Map<string, Batch>();
  #scheduled = false;
  /** Calls sent and not yet answered, with their callers (rejected by a drain that times out). */
  readonly #inflight = new Map<Promise<void>, Batch>();
  readonly #calls = new CallTokens();

  constructor(scripts: Scripts, tombstoneMs: number, deadLetters: BrokerOptions['deadLetters']) {
    this.#scripts = scripts;
    this.#tombstoneMs = tombstoneMs;
    this.#dead = [deadLetters.maxCount, deadLetters.maxAgeMs];
  }

  /** Queues one operation (see settle-7.lua); `ttls` when it stores a record. */
  submit(keys: QueueKeys, id: string, op: Op, ttls: [number, number] | null = null): Promise<void> {
    // Records' TTLs travel once per call, so a batch holds operations with the same TTLs.
    const batchKey = ttls ? `${keys.base}\n${ttls[0]}\n${ttls[1]}` : keys.base;
    let batch = this.#batches.get(batchKey);
    if (!batch) this.#batches.set(batchKey, (batch = { keys, ttls: ttls ?? ['', ''], args: [], waiters: [] }));
    batch.args.push(...op);
    const done = new Promise<void>((resolve, reject) => batch.waiters.push({ id, resolve, reject }));
    // process.nextTick runs once the current cascade of promise callbacks has drained, so every
    // delivery settled off the same reply (handlers finishing together) lands in one batch, and
    // the batch still goes out in the same turn as ioredis' own auto-pipeline.
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(() => this.#flush());
    }
    return done;
  }

  /**
   * Sends what is queued and waits until every call has answered, or `boundMs` has passed; then
   * rejects the callers of the calls still unanswered. Resolves true when all answered.
   */
  async drain(boundMs = CLOSE_DRAIN_MS): Promise<boolean> {
    if (this.#scheduled) this.#flush();
    let timer: NodeJS.Timeout | undefined;
    let late = false;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        late = true;
        resolve();
      }, boundMs);
    });
    try {
      while (this.#inflight.size > 0 && !late) await Promise.race([Promise.allSettled([...this.#inflight.keys()]), bound]);
    } finally {
      clearTimeout(timer);
    }
    if (this.#inflight.size === 0) return true;
    for (const { keys, waiters } of this.#inflight.values()) {
      const error = new BackendError(
        `settling ${waiters.length} deliveries on queue ${keys.queue} failed: the broker closed before Redis answered the call within ${boundMs} ms ` +
          '(a silent connection). If Redis ran it, it took effect; if not, each lease lapses and its task is delivered again',
      );
      for (const w of waiters) w.reject(error);
    }
    this.#inflight.clear();
    return false;
  }

  #flush(): void {
    if (!this.#scheduled) return;
    this.#scheduled = false;
    const batches = this.#batches;
    this.#batches = new Map();
    for (const batch of batches.values()) {
      for (const chunk of split(batch)) {
        const call = this.#send(chunk).finally(() => this.#inflight.delete(call));
        this.#inflight.set(call, chunk);
      }
    }
  }

  async #send({ keys, ttls, args, waiters }: Batch): Promise<void> {
    let replies: number[];
    const call = this.#calls.next();
    const forget = this.#calls.forget(keys.base);
    try {
      replies = (await this.#scripts.run('settle', keys.main, [keys.base, this.#tombstoneMs, ...ttls, Date.now(), ...this.#dead, call, MEMO_MS, forget, ...args])) as number[];
      this.#calls.answered(keys.base, call);
    } catch (err) {
      const error = new BackendError(`settling ${waiters.length} deliveries on queue ${keys.queue} failed: ${(err as Error).message}`, { cause: err });
      for (const w of waiters) w.reject(error);
      return;
    }
    waiters.forEach((w, i) => (replies[i] === 1 ? w.resolve() : w.reject(new LeaseLostError(w.id))));
  }
}

/** Splits a batch at operation boundaries (operations have different lengths, so count waiters). */
function split(batch: Batch): Batch[] {
  if (batch.waiters.length <= MAX_OPS_PER_CALL) return [batch];
  const out: Batch[] = [];
  let at = 0;
  for (let start = 0; start < batch.waiters.length; start += MAX_OPS_PER_CALL) {
    const waiters = batch.waiters.slice(start, start + MAX_OPS_PER_CALL);
    const from = at;
    for (let n = 0; n < waiters.length; n++) at += opLength(batch.args[at] as string);
    out.push({ keys: batch.keys, ttls: batch.ttls, args: batch.args.slice(from, at), waiters });
  }
  return out;
}

const OP_LENGTH: Record<string, number> = { S: 5, F: 5, A: 3, D: 8, R: 5, L: 4 };
const opLength = (kind: string) => OP_LENGTH[kind]!;

/**
 * One leased message of a Redis queue. Settling goes through the Settler; `keys` and `storedId`
 * are where the message really sits (an injected raw message may claim another id). `lapses`
 * comes from the queue's lapse counter (lib/queue.lua `promote`). Times given to `retry` and
 * `release` are on this process' clock; the script moves them onto the server's.
 */
export class RedisDelivery implements Delivery {
  constructor(
    readonly message: TaskMessage,
    readonly token: string,
    readonly keys: QueueKeys,
    readonly storedId: string,
    readonly settler: Settler,
    readonly lapses = 0,
  ) {}

  ack(settlement?: Settlement): Promise<void> {
    if (!settlement) return this.#submit(['A']);
    const { record } = settlement;
    return this.#submit([record.state === 'succeeded' ? 'S' : 'F', JSON.stringify(record), record.idempotencyKey ?? ''], settlement);
  }

  retry(next: TaskMessage, at: number): Promise<void> {
    return this.#submit(['R', Math.trunc(at), encodeMessage(next)]);
  }

  deadLetter(reason: string, settlement?: Settlement, lastError?: ErrorInfo | null): Promise<void> {
    const record = settlement?.record;
    const kept = lastError ?? record?.error;
    const error = kept ? JSON.stringify(kept) : '';
    const stored = record ? [JSON.stringify(record), record.idempotencyKey ?? '', record.state] : ['', '', ''];
    return this.#submit(['D', ...stored, reason, error], settlement);
  }

  release(at?: number): Promise<void> {
    return this.#submit(['L', at === undefined ? '' : Math.trunc(at)]);
  }

  #submit([kind, ...rest]: Op, settlement?: Settlement): Promise<void> {
    const ttls: [number, number] | null = settlement ? [Math.ceil(settlement.ttlMs), Math.ceil(settlement.keyTtlMs)] : null;
    return this.settler.submit(this.keys, this.storedId, [kind!, this.storedId, this.token, ...rest], ttls);
  }
}
