import { claimsConsumed, releaseClaims } from './claims.js';
import { LeaseLostError, NonRetryableError, toErrorInfo, type ErrorInfo } from './errors.js';
import type { Run, RunOutcome } from './execution.js';
import type { Settlement, TaskResult } from './results.js';
import { backoffDelay, nextAttempt } from './retry.js';

/** The last step: a success is stored and acked; a failure is retried with backoff or dead-lettered. */
export async function settleOutcome(run: Run): Promise<RunOutcome> {
  const outcome = run.outcome!;
  if (!outcome.ok) return failAttempt(run, outcome.error);
  const { message, task, delivery } = run;
  run.emit({ type: 'task:succeeded', message, value: outcome.value, durationMs: outcome.durationMs });
  // A keyed task's success is always stored: later deliveries of the key depend on it.
  if (task!.options.keepResult || message.idempotencyKey !== null) await settle(run, record(run, 'succeeded', { value: outcome.value }));
  else await delivery.ack();
  return 'succeeded';
}

async function failAttempt(run: Run, err: unknown): Promise<RunOutcome> {
  const { message, delivery } = run;
  const error = toErrorInfo(err);
  const spent = run.attempt >= message.maxAttempts;
  if (spent || err instanceof NonRetryableError) {
    const reason = spent ? `failed after ${run.attempt} attempt(s): ${error.message}` : `non-retryable error: ${error.message}`;
    run.emit({ type: 'task:failed', message, error, reason });
    await settle(run, record(run, 'failed', { error }), reason);
    return 'failed';
  }
  const delayMs = backoffDelay(run.task!.options.retry, run.attempt);
  run.emit({ type: 'task:retrying', message, error, delayMs });
  const at = Date.now() + delayMs;
  // A handler that really ended gives its claims back first, so its retry does not find them busy.
  if (run.handlerEnded) await releaseClaims(run);
  await delivery.retry(nextAttempt(message, run.attempt, error, at), at);
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
    const stored = await conn.results.store(settlement, fenced ? { owner: delivery.token } : {});
    if (!stored) {
      for (const c of run.control.claims) if (c.kind === 'task') c.done = true;
      // Not ours to store any more. If the broker still leases the message to us, it goes back now
      // rather than when the lease lapses (which would count as a delivery that died).
      await delivery.release().catch(() => {});
      throw new LeaseLostError(run.message.id);
    }
    claimsConsumed(run);
  }
  const withAck = run.storeApart ? undefined : settlement;
  try {
    if (deadReason === undefined) await delivery.ack(withAck);
    else await delivery.deadLetter(deadReason, withAck);
  } catch (err) {
    // The handler of a keyed task did take effect: record the success under its key even though
    // the lease moved on, so the delivery that now owns the message reuses it instead of re-running.
    if (err instanceof LeaseLostError && !run.storeApart && result.state === 'succeeded' && result.idempotencyKey !== null) {
      await conn.results.store(settlement);
    }
    throw err;
  }
  if (withAck) claimsConsumed(run);
}

export function record(run: Run, state: TaskResult['state'], extra: { value?: unknown; error?: ErrorInfo }): TaskResult {
  const { message } = run;
  return {
    id: message.id,
    queue: message.queue,
    task: message.task,
    state,
    ...extra,
    attempts: run.attempt,
    finishedAt: Date.now(),
    idempotencyKey: message.idempotencyKey,
  };
}
