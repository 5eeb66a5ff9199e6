import { claimsConsumed, releaseClaims, withinLease } from './claims.js';
import { LeaseLostError, NonRetryableError, toErrorInfo, type ErrorInfo } from './errors.js';
import type { Delivery } from './broker.js';
import type { Run, RunOutcome } from './execution.js';
import type { Settlement, TaskResult } from './results.js';
import { backoffDelay, nextAttempt } from './retry.js';

/** The last step: a success is stored and acked; a failure is retried with backoff or dead-lettered. */
export async function settleOutcome(run: Run): Promise<RunOutcome> {
  const outcome = run.outcome!;
  if (!outcome.ok) return failAttempt(run, outcome.error, outcome.durationMs);
  const { message, task, delivery } = run;
  run.emit({ type: 'task:succeeded', message, attempt: run.attempt, value: outcome.value, durationMs: outcome.durationMs });
  // A keyed task's success is always stored: later deliveries of the key depend on it.
  if (task!.options.keepResult || message.idempotencyKey !== null) await settle(run, record(run, 'succeeded', { value: outcome.value }));
  else await settling(run).ack();
  return 'succeeded';
}

async function failAttempt(run: Run, err: unknown, durationMs: number): Promise<RunOutcome> {
  const { message, delivery } = run;
  const error = toErrorInfo(err);
  const spent = run.attempt >= message.maxAttempts;
  if (spent || err instanceof NonRetryableError) {
    const reason = spent ? `failed after ${run.attempt} attempt(s): ${error.message}` : `non-retryable error: ${error.message}`;
    run.emit({ type: 'task:failed', message, attempt: run.attempt, error, reason, durationMs });
    await settle(run, record(run, 'failed', { error }), reason);
    return 'failed';
  }
  const delayMs = backoffDelay(run.task!.options.retry, run.attempt);
  run.emit({ type: 'task:retrying', message, attempt: run.attempt, error, delayMs, durationMs });
  const at = Date.now() + delayMs;
  // A handler that really ended gives its claims back first, so its retry does not find them busy.
  if (run.handlerEnded) await releaseClaims(run);
  await settling(run).retry(nextAttempt(message, run.attempt, error, at), at);
  return 'retrying';
}

/**
 * Stores the outcome and acks (or dead-letters when `deadReason` is given): in one atomic step
 * where the broker holds the results; where the store is apart, first a store fenced by the task
 * claim (a stale owner stores nothing and ends `lost`), then the ack.
 */
export async function settle(run: Run, result: TaskResult, deadReason?: string): Promise<void> {
  const { app, conn, delivery } = run;
  // A keyed task's result lives as long as its key, so a duplicate's handle always finds it.
  const keyTtlMs = app.options.idempotencyTtlMs;
  const ttlMs = result.idempotencyKey === null ? app.options.resultTtlMs : Math.max(app.options.resultTtlMs, keyTtlMs);
  const settlement: Settlement = { record: result, ttlMs, keyTtlMs };
  if (run.storeApart) {
    const fenced = run.control.claims.some((c) => c.kind === 'task' && !c.done);
    const stored = await withinLease(run, 'storing the outcome', conn.results.store(settlement, fenced ? { owner: delivery.token } : {}));
    if (!stored) {
      for (const c of run.control.claims) if (c.kind === 'task') c.done = true;
      // Not ours to store any more. If the broker still leases the message to us, it goes back now
      // rather than when the lease lapses (which would count as a delivery that died).
      await settling(run).release().catch(() => {});
      throw new LeaseLostError(run.message.id);
    }
    claimsConsumed(run);
  }
  const withAck = run.storeApart ? undefined : settlement;
  try {
    if (deadReason === undefined) await settling(run).ack(withAck);
    else await settling(run).deadLetter(deadReason, withAck, result.error ?? null);
  } catch (err) {
    // The handler of a keyed task did take effect: record the success under its key even though
    // the lease moved on, so the delivery that now owns the message reuses it instead of re-running.
    if (err instanceof LeaseLostError && !run.storeApart && result.state === 'succeeded' && result.idempotencyKey !== null) {
      await withinLease(run, 'storing the outcome of a stale owner', conn.results.store(settlement)).catch((stall: unknown) =>
        run.logger.warn({ taskId: run.message.id, err: String(stall) }, 'could not record the success of a stale owner under its key; the key runs again'),
      );
    }
    throw err;
  }
  if (withAck) claimsConsumed(run);
}

/** The run's delivery, marked as settling first (see `Attempt.settling`): every settlement goes through here. */
export function settling(run: Run): Delivery {
  run.control.beginSettlement();
  return run.delivery;
}

/**
 * The task's final record: its outcome, and what its page shows (payload, when it was enqueued and
 * started, which worker ran it). `startedAt` is absent for a task refused before its handler ran.
 */
export function record(run: Run, state: TaskResult['state'], extra: { value?: unknown; error?: ErrorInfo }): TaskResult {
  const { message } = run;
  const result: TaskResult = {
    id: message.id,
    queue: message.queue,
    task: message.task,
    state,
    ...extra,
    attempts: run.attempt,
    finishedAt: Date.now(),
    idempotencyKey: message.idempotencyKey,
  };
  return ranHere(run, result);
}

/** The largest payload (its JSON, in bytes) a result record keeps: records are kept for a day and read by every task page. */
export const MAX_KEPT_PAYLOAD_BYTES = 64 * 1024;

/**
 * Writes into `result` (an outcome without them) what this delivery knows of the task: its payload
 * (as `keepPayload` says, by `result.state`), when it was enqueued, when this attempt started (if
 * its handler ran) and this worker.
 */
export function ranHere(run: Run, result: TaskResult): TaskResult {
  const { message } = run;
  const keep = run.app.options.keepPayload;
  if (keep === 'always' || (keep === 'failures' && result.state !== 'succeeded')) {
    // Only the kept ones are measured: with the default, a success serializes nothing extra.
    if (Buffer.byteLength(JSON.stringify(message.payload) ?? '') <= MAX_KEPT_PAYLOAD_BYTES) result.payload = message.payload;
    else result.payloadOmitted = 'too large';
  }
  result.enqueuedAt = message.createdAt;
  if (run.startedAt !== undefined) result.startedAt = run.startedAt;
  if (run.worker !== undefined) result.worker = run.worker;
  return result;
}
