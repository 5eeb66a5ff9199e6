import { assertQueueName } from '@celeriac/core';

// celeriac queue names cannot contain ':', so suffixes after ':' never collide with a user's queue.
// The work queue keeps the plain name, so a raw AMQP consumer or the management UI sees it as is.

/** The AMQP name of a work queue, after checking the celeriac name. */
export const workQueue = (queue: string): string => assertQueueName(queue);
export const deadQueue = (queue: string): string => `${assertQueueName(queue)}:dead`;
export const delayQueue = (queue: string, level: number): string => `${assertQueueName(queue)}:delay:${2 ** level}`;
export const holdQueue = (queue: string, client: string): string => `${assertQueueName(queue)}:hold:${client}`;
export const replyQueue = (client: string): string => `celeriac:reply:${client}`;

/** Delay levels are powers of two in ms: 2^0 = 1 ms … 2^31 ≈ 24.9 days per hop. */
export const DELAY_LEVELS = 32;

/**
 * The ladder level for a message still `remainingMs` from due: the largest 2^k ≤ remainingMs, so a
 * message never comes back early by more than it is then re-sent for — it is never delivered before
 * its time, and a delay of d ms takes at most popcount(d) hops.
 */
export function delayLevel(remainingMs: number): number {
  if (remainingMs < 1) return -1;
  return Math.min(DELAY_LEVELS - 1, Math.floor(Math.log2(remainingMs)));
}

/** Headers celeriac sets on AMQP messages. */
export const H = {
  /** Epoch ms before which the message must not run (release/retry/eta). */
  readyAt: 'x-celeriac-ready-at',
  reason: 'x-celeriac-reason',
  error: 'x-celeriac-error',
  deadAt: 'x-celeriac-dead-at',
  ttlMs: 'x-celeriac-ttl-ms',
  keyTtlMs: 'x-celeriac-key-ttl-ms',
  /** Marks a rotated copy in a hold queue with the delivery it continues. */
  hold: 'x-celeriac-hold',
} as const;
