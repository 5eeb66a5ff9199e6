import type { App, Connection } from './app.js';
import type { Attempt } from './attempt.js';
import type { Delivery } from './broker.js';
import type { TaskMessage } from './envelope.js';
import { describeIssues, LeaseLostError, NonRetryableError, TaskTimeoutError, UnknownTaskError, ValidationError, toErrorInfo, type ErrorInfo } from './errors.js';
import type { Settlement, TaskResult } from './results.js';
import { backoffDelay, nextAttempt } from './retry.js';
import type { TaskContext } from './task.js';

/** How long a delivery whose idempotency key is held elsewhere waits before it is offered again. */
export const KEY_BUSY_DELAY_MS = 1_000;

export type TaskEvent =
  | { type: 'task:started'; message: TaskMessage }
  | { type: 'task:succeeded'; message: TaskMessage; value: unknown; durationMs: number }
  | { type: 'task:retrying'; message: TaskMessage; error: ErrorInfo; delayMs: number }
  | { type: 'task:failed'; message: TaskMessage; error: ErrorInfo; reason: string };

/** How a delivery ended, from the worker's point of view. */
export type RunOutcome = 'succeeded' | 'retrying' | 'failed' | 'expired' | 'duplicate' | 'yielded' | 'released' | 'lost';

export interface RunOptions {
  /** The attempt's abort switch: the worker aborts it on lease loss or hard stop; a time limit aborts it here. */
  attempt: Attempt;
  leaseMs: number;
  onEvent?: (event: TaskEvent) => void;
}

/**
 * Runs one delivery by the rules of celeriac, and settles it exactly once.
 * 1. Unknown task or invalid payload → dead letter with the reason (never dropped, never run).
 * 2. Past `expiresAt` → not run; ends `expired`.
 * 3. Idempotency key → claimed first; a stored success is reused, a key held elsewhere yields.
 * 4. The handler runs with `ctx.signal`; the time limit fails the attempt even if it is ignored.
 * 5. Success → result stored with the ack; failure → retry with backoff, or dead letter when
 *    attempts are spent or the error is `NonRetryableError`.
 */
export async function runDelivery(app: App, conn: Connection, delivery: Delivery, options: RunOptions): Promise<RunOutcome> {
  try {
    return await run(app, conn, delivery, options);
  } catch (err) {
    if (err instanceof LeaseLostError) {
      app.logger.warn({ taskId: delivery.message.id }, err.message);
      return 'lost';
    }
    throw err;
  }
}

async function run(app: App, conn: Connection, delivery: Delivery, options: RunOptions): Promise<RunOutcome> {
  let handlerStarted = false;
  try {
    return await runAttempt(app, conn, delivery, options, () => (handlerStarted = true));
  } finally {
    if (!handlerStarted) options.attempt.handlerDone();
  }
}

async function runAttempt(app: App, conn: Connection, delivery: Delivery, { attempt, leaseMs, onEvent: listener }: RunOptions, markStarted: () => void): Promise<RunOutcome> {
  const message = delivery.message;
  // A listener that throws must not decide a task's fate (it would be redelivered and run again).
  const onEvent = (event: TaskEvent) => {
    try {
      listener?.(event);
    } catch (err) {
      app.logger.error({ taskId: message.id, event: event.type, err: String(err) }, 'a task event listener threw; the task goes on');
    }
  };
  const task = app.getTask(message.task);
  const fail = (error: ErrorInfo, reason: string, state: 'failed' | 'expired' = 'failed') => {
    onEvent({ type: 'task:failed', message, error, reason });
    return settle(app, conn, delivery, record(message, state, { error }), reason);
  };
  if (!task) {
    const err = new UnknownTaskError(message.task);
    await fail(toErrorInfo(err), err.message);
    return 'failed';
  }
  if (message.expiresAt !== null && Date.now() > message.expiresAt) {
    const error = { name: 'TaskExpiredError', message: `task expired at ${new Date(message.expiresAt).toISOString()} before it ran` };
    onEvent({ type: 'task:failed', message, error, reason: error.message });
    await settle(app, conn, delivery, record(message, 'expired', { error }));
    return 'expired';
  }
  const input = task.input.safeParse(message.payload);
  if (!input.success) {
    const err = new ValidationError('INVALID_PAYLOAD', `invalid payload for task "${message.task}": ${describeIssues(input.error)}`);
    await fail(toErrorInfo(err), err.message);
    return 'failed';
  }

  const keyRef = message.idempotencyKey === null ? null : { queue: message.queue, key: message.idempotencyKey };
  if (keyRef) {
    const claim = await conn.results.claimKey(keyRef, delivery.token, leaseMs);
    if (claim.status === 'done') {
      await settle(app, conn, delivery, { ...claim.record, id: message.id, queue: message.queue, task: message.task });
      return 'duplicate';
    }
    if (claim.status === 'busy') {
      await delivery.release(Date.now() + KEY_BUSY_DELAY_MS);
      return 'yielded';
    }
  }

  onEvent({ type: 'task:started', message });
  const started = Date.now();
  const ctx: TaskContext = {
    id: message.id,
    task: message.task,
    queue: message.queue,
    attempt: message.attempt,
    maxAttempts: message.maxAttempts,
    idempotencyKey: message.idempotencyKey,
    get signal() {
      return attempt.signal;
    },
    log: app.logger,
  };
  const timeoutMs = task.options.timeoutMs;
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => attempt.abort(new TaskTimeoutError(timeoutMs)), timeoutMs);
  markStarted();
  const work = Promise.resolve().then(() => task.handler(input.data, ctx));
  // The handler's real end, which a time limit cannot hasten (JavaScript cannot kill it): only then
  // is its worker slot free and its idempotency key released, so an attempt that ignores its
  // signal never runs alongside its own retry and never pushes a worker past its concurrency.
  const ended = work.then(
    () => undefined,
    () => undefined,
  );
  void ended.then(() => attempt.handlerDone());
  const releaseKeyWhenEnded = () => {
    if (keyRef) void ended.then(() => conn.results.releaseKey(keyRef, delivery.token)).catch((err: unknown) => app.logger.warn({ taskId: message.id, err: String(err) }, 'could not release idempotency key; it lapses with its lease'));
  };
  let value: unknown;
  try {
    value = await attempt.race(work);
    try {
      value = toJson(value);
    } catch (err) {
      throw new NonRetryableError(`task "${message.task}" returned a value that is not JSON-serialisable: ${(err as Error).message}`);
    }
    if (task.output) {
      const out = task.output.safeParse(value);
      if (!out.success) throw new NonRetryableError(`task "${message.task}" returned a value that fails its output schema: ${describeIssues(out.error)}`);
    }
  } catch (err) {
    const reason: unknown = attempt.aborted ? attempt.reason : undefined;
    if (reason !== undefined && !(reason instanceof TaskTimeoutError)) {
      // Lease lost or the worker is stopping at once: this attempt's outcome is not ours to record.
      releaseKeyWhenEnded();
      if (reason instanceof LeaseLostError) return 'lost';
      await delivery.release();
      return 'released';
    }
    const timedOut = reason instanceof TaskTimeoutError;
    if (keyRef && !timedOut) await conn.results.releaseKey(keyRef, delivery.token);
    else releaseKeyWhenEnded();
    return failAttempt(app, conn, delivery, task.options.retry, reason ?? err, onEvent);
  } finally {
    clearTimeout(timer);
  }
  onEvent({ type: 'task:succeeded', message, value, durationMs: Date.now() - started });
  // A keyed task's success is always stored: later deliveries of the key depend on it.
  if (task.options.keepResult || keyRef) await settle(app, conn, delivery, record(message, 'succeeded', { value }));
  else await delivery.ack();
  return 'succeeded';
}

async function failAttempt(
  app: App,
  conn: Connection,
  delivery: Delivery,
  policy: Parameters<typeof backoffDelay>[0],
  err: unknown,
  onEvent: (event: TaskEvent) => void,
): Promise<RunOutcome> {
  const message = delivery.message;
  const error = toErrorInfo(err);
  const spent = message.attempt >= message.maxAttempts;
  if (spent || err instanceof NonRetryableError) {
    const reason = spent ? `failed after ${message.attempt} attempt(s): ${error.message}` : `non-retryable error: ${error.message}`;
    onEvent({ type: 'task:failed', message, error, reason });
    await settle(app, conn, delivery, record(message, 'failed', { error }), reason);
    return 'failed';
  }
  const delayMs = backoffDelay(policy, message.attempt);
  onEvent({ type: 'task:retrying', message, error, delayMs });
  const at = Date.now() + delayMs;
  await delivery.retry(nextAttempt(message, message.attempt, error, at), at);
  return 'retrying';
}

/** Stores the outcome and acks (or dead-letters when `deadReason` is given) — atomically where the broker holds the results. */
async function settle(app: App, conn: Connection, delivery: Delivery, result: TaskResult, deadReason?: string): Promise<void> {
  const settlement: Settlement = { record: result, ttlMs: app.options.resultTtlMs, keyTtlMs: app.options.idempotencyTtlMs };
  const atomic = conn.results === conn.broker.results;
  if (!atomic) await conn.results.store(settlement);
  const withAck = atomic ? settlement : undefined;
  try {
    if (deadReason === undefined) await delivery.ack(withAck);
    else await delivery.deadLetter(deadReason, withAck);
  } catch (err) {
    // The handler of a keyed task did take effect: record the success under its key even though
    // the lease moved on, so the delivery that now owns the message reuses it instead of re-running.
    if (err instanceof LeaseLostError && atomic && result.state === 'succeeded' && result.idempotencyKey !== null) {
      await conn.results.store(settlement);
    }
    throw err;
  }
}

function record(message: TaskMessage, state: TaskResult['state'], extra: { value?: unknown; error?: ErrorInfo }): TaskResult {
  return {
    id: message.id,
    queue: message.queue,
    task: message.task,
    state,
    ...extra,
    attempts: message.attempt,
    finishedAt: Date.now(),
    idempotencyKey: message.idempotencyKey,
  };
}

function toJson(value: unknown): unknown {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}
