import type { Claim } from './attempt.js';
import type { Run } from './execution.js';
import type { KeyClaim } from './results.js';
import { withTimeout } from './timeout.js';

/**
 * A store call of a run (a claim, a store, giving claims back) that did not answer within the
 * run's `leaseMs`. By then any claim it took would be at risk and the broker lease has been renewed
 * for nothing: `runDelivery` gives the delivery back (a release, which counts no lapse) and ends
 * the run `released`, freeing its slot, so a silent store never holds a task, or `stop()`, forever.
 */
export class StoreStalledError extends Error {
  constructor(taskId: string, what: string, leaseMs: number) {
    super(`the result store did not answer (${what}) for task ${taskId} within ${leaseMs} ms (leaseMs); the delivery goes back to the queue`);
    this.name = 'StoreStalledError';
  }
}

/**
 * Bounds a store call made inside a run by the run's lease. Only keyed tasks and stores apart
 * from the broker make such calls: a plain task on a broker that stores atomically gets no timer.
 */
export function withinLease<T>(run: Run, what: string, call: Promise<T>): Promise<T> {
  return withTimeout(call, run.leaseMs, () => new StoreStalledError(run.message.id, what, run.leaseMs));
}

/** A claim this run took, with the call that gives it back. */
export interface HeldClaim extends Claim {
  release(): Promise<void>;
}

/**
 * Takes a store claim for `run` through `take(leaseMs)`; when acquired, it goes on the attempt's
 * claims for the lease keeper to renew, known valid until the send time of the call + lease.
 */
export async function takeClaim(run: Run, kind: Claim['kind'], take: (leaseMs: number) => Promise<KeyClaim>, release: () => Promise<unknown>): Promise<KeyClaim> {
  const sentAt = Date.now();
  const answer = await withinLease(run, `${kind} claim`, take(run.leaseMs));
  if (answer.status !== 'acquired') return answer;
  const claim: HeldClaim = {
    kind,
    validUntil: sentAt + run.leaseMs,
    done: false,
    renew: async (leaseMs) => (await take(leaseMs)).status === 'acquired',
    release: async () => {
      if (claim.done) return;
      claim.done = true;
      await release();
    },
  };
  run.control.addClaim(claim);
  return answer;
}

/** The idempotency key's claim, when the task has a key. */
export function keyClaimOf(run: Run): Promise<KeyClaim> | null {
  const { message, delivery, conn } = run;
  if (message.idempotencyKey === null) return null;
  const ref = { queue: message.queue, key: message.idempotencyKey };
  return takeClaim(
    run,
    'idempotency key',
    (leaseMs) => conn.results.claimKey(ref, delivery.token, leaseMs),
    () => conn.results.releaseKey(ref, delivery.token),
  );
}

/** The task claim (`claimTask`), which fences the store where it is apart from the broker. */
export function taskClaimOf(run: Run): Promise<KeyClaim> {
  const { message, delivery, conn } = run;
  return takeClaim(
    run,
    'task',
    (leaseMs) => conn.results.claimTask(message, delivery.token, leaseMs),
    () => conn.results.releaseTask(message, delivery.token),
  );
}

/** A store with the task claim as owner consumed every claim of the run (rule 1 and 5 of ResultBackend). */
export function claimsConsumed(run: Run): void {
  for (const claim of run.control.claims) claim.done = true;
}

/** Gives back the claims still held (within the lease); a failure only delays the next owner until the lease lapses. */
export async function releaseClaims(run: Run): Promise<void> {
  const held = run.control.claims.filter((c): c is HeldClaim => !c.done && 'release' in c);
  await Promise.all(
    held.map((c) =>
      withinLease(run, `releasing the ${c.kind} claim`, c.release()).catch((err: unknown) => run.logger.warn({ taskId: run.message.id, claim: c.kind, err: String(err) }, 'could not release a claim; it lapses with its lease')),
    ),
  );
}
