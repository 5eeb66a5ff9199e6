import type { DeadLetter } from './broker.js';
import { encodeMessage, parseMessage, type TaskMessage } from './envelope.js';

/** Why `redrive` refused an id that names no dead letter of the queue (rule 8). */
export const DEAD_LETTER_NOT_FOUND = 'not found';
/** Why `redrive` refused a letter whose task id is in its queue now (it stays a dead letter). */
export const DEAD_LETTER_QUEUED = 'already queued: a task with this id is waiting or running';

export type Redriven = { ok: true; message: TaskMessage; raw: string } | { ok: false; reason: string };

/**
 * The fresh message a dead letter goes back as (Broker rule 8), written once here so every backend
 * only moves bytes: attempt 1, the same id, ready at once, and the letter's reason as `lastError`
 * (its history; the error's name and stack are kept where the letter has them), and no expiry. A letter whose raw
 * text is not a valid message of `queue`, or whose new form is over `maxBytes`, is refused with why.
 */
export function redriveMessage(letter: Pick<DeadLetter, 'raw' | 'reason' | 'error'>, queue: string, maxBytes: number): Redriven {
  const parsed = parseMessage(letter.raw, { queue, maxBytes });
  if (!parsed.ok) return parsed;
  // No expiry either: a redrive is an operator's decision to run it now, past any deadline it had.
  const message: TaskMessage = { ...parsed.message, attempt: 1, eta: null, expiresAt: null, lastError: { ...(letter.error ?? { name: 'DeadLetter' }), message: letter.reason } };
  try {
    return { ok: true, message, raw: encodeMessage(message, maxBytes) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
