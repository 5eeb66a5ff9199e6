import { randomBytes } from 'node:crypto';

/**
 * Answered tokens are handed over this many at a time: one DEL per this many calls rather than
 * one per call (each `redis.call` inside a script costs the server a few microseconds).
 */
const FORGET_AT_ONCE = 8;
/** Most memos one call asks its script to delete (the rest wait for the next call, or expire). */
const MAX_FORGET_PER_CALL = 100;
/** Answered tokens kept per queue while no call goes there; older ones simply expire on the server. */
const MAX_PENDING_PER_QUEUE = 1_000;

/**
 * Call tokens for the scripts that remember what they did (fetch, settle), so that a call ioredis
 * resends after a reconnect (its first execution ran, its reply was lost) gets the first
 * execution's answer instead of running again.
 * 1. Makes a token unique per call; a resend carries the same arguments, so the same token.
 * 2. Collects, per queue, the tokens whose reply arrived: no resend of them can come any more, so
 *    a later call to that queue has the script delete their memos, a few at a time. Memos expire
 *    on their own as well; this keeps the live ones down to a few per queue beyond the calls
 *    still in flight.
 */
export class CallTokens {
  // 12 random base64url characters make the process unique enough, and short tokens keep every
  // command small (a fetch's tokens are derived from its call's token).
  readonly #instance = randomBytes(9).toString('base64url');
  #calls = 0;
  readonly #answered = new Map<string, string[]>();

  next(): string {
    return `${this.#instance}.${++this.#calls}`;
  }

  /** Answered tokens of the queue at `base`, as one argument ('' when too few); each is handed out once. */
  forget(base: string): string {
    const pending = this.#answered.get(base);
    if (!pending || pending.length < FORGET_AT_ONCE) return '';
    const taken = pending.splice(0, MAX_FORGET_PER_CALL);
    if (pending.length === 0) this.#answered.delete(base);
    return taken.join(' ');
  }

  /** The reply of `token`'s call on `base` arrived: its memo may go. */
  answered(base: string, token: string): void {
    let pending = this.#answered.get(base);
    if (!pending) this.#answered.set(base, (pending = []));
    pending.push(token);
    if (pending.length > MAX_PENDING_PER_QUEUE) pending.shift();
  }
}
