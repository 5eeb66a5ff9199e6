import type { RetryPolicy } from './options.js';
import type { TaskMessage } from './envelope.js';
import type { ErrorInfo } from './errors.js';

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` failed.
 * Exponential: delayMs·2^(attempt−1), capped at maxDelayMs. With jitter, "full jitter"
 * (a uniform draw in [0, delay]) spreads a burst of failures instead of retrying them in lockstep.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = policy.backoff === 'fixed' ? policy.delayMs : policy.delayMs * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelayMs, base);
  return policy.jitter ? Math.floor(random() * (capped + 1)) : capped;
}

/**
 * The attempt a delivery runs: its message's attempt plus every earlier delivery of it that died
 * unsettled (`Delivery.lapses`). A crash counts as a spent attempt, as Celery's `acks_late` with
 * a delivery limit does, so a handler that kills its worker ends dead-lettered, not in a loop.
 */
export function attemptOf(delivery: { message: TaskMessage; lapses: number }): number {
  return delivery.message.attempt + delivery.lapses;
}

/** The envelope of the attempt after `attempt` failed with `error`, due at epoch ms `at`. */
export function nextAttempt(message: TaskMessage, attempt: number, error: ErrorInfo, at: number): TaskMessage {
  return { ...message, attempt: attempt + 1, lastError: error, eta: at };
}
