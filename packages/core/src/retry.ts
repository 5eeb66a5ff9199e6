import type { RetryPolicy } from './options.js';

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
