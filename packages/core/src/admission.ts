import { keyClaimOf, taskClaimOf } from './claims.js';
import { describeIssues, UnknownTaskError, ValidationError, toErrorInfo, type ErrorInfo } from './errors.js';
import type { Run, RunOutcome, StepResult } from './execution.js';
import type { KeyClaim } from './results.js';
import { ranHere, record, settle, settling } from './settlement.js';

/**
 * The steps before a handler runs: each either lets the delivery through (`undefined`, at once
 * when it needs no I/O: most deliveries pass every step without an await) or settles it and says
 * how it ended.
 */

/** How long a delivery whose idempotency key (or task claim) is held elsewhere waits before it is offered again. */
export const KEY_BUSY_DELAY_MS = 1_000;

/** Dead-letters with `reason` (stored as a failed result carrying `error`): never run, never dropped. */
async function refuse(run: Run, error: ErrorInfo, reason: string): Promise<RunOutcome> {
  run.emit({ type: 'task:failed', message: run.message, attempt: run.attempt, error, reason });
  await settle(run, record(run, 'failed', { error }), reason);
  return 'failed';
}

export function knownTask(run: Run): StepResult {
  const task = run.app.getTask(run.message.task);
  if (task) {
    run.task = task;
    return undefined;
  }
  const err = new UnknownTaskError(run.message.task);
  return refuse(run, toErrorInfo(err), err.message);
}

export function notExpired(run: Run): StepResult {
  const { expiresAt } = run.message;
  if (expiresAt === null || Date.now() <= expiresAt) return undefined;
  return expire(run, expiresAt);
}

async function expire(run: Run, expiresAt: number): Promise<RunOutcome> {
  const error = { name: 'TaskExpiredError', message: `task expired at ${new Date(expiresAt).toISOString()} before it ran` };
  run.emit({ type: 'task:failed', message: run.message, attempt: run.attempt, error, reason: error.message });
  await settle(run, record(run, 'expired', { error }));
  return 'expired';
}

export function validPayload(run: Run): StepResult {
  const input = run.task!.input.safeParse(run.message.payload);
  if (input.success) {
    run.input = input.data;
    return undefined;
  }
  const err = new ValidationError('INVALID_PAYLOAD', `invalid payload for task "${run.message.task}": ${describeIssues(input.error)}`);
  return refuse(run, toErrorInfo(err), err.message);
}

/**
 * A delivery that died unsettled (its worker crashed, hung or was cut off) spent an attempt
 * (`attemptOf`): past `maxAttempts`, the task is dead-lettered instead of killing workers forever.
 */
export function notCrashLooping(run: Run): StepResult {
  const { message, delivery } = run;
  if (run.attempt <= message.maxAttempts) return undefined;
  if (delivery.lapses === 0) {
    // Core never sends such a message; one made elsewhere is refused rather than run past its limit.
    const reason = `attempt ${message.attempt} is past maxAttempts ${message.maxAttempts}: no attempt left to run`;
    return refuse(run, { name: 'TaskLapsedError', message: reason }, reason);
  }
  const died = `delivered ${delivery.lapses} time(s) and each delivery died before settling (its worker crashed, hung or lost its lease)`;
  const failed = message.attempt - 1;
  const reason = `${failed > 0 ? `failed ${failed} attempt(s), then was ` : ''}${died}; that spends its ${message.maxAttempts} attempt(s)`;
  return refuse(run, { name: 'TaskLapsedError', message: reason }, reason);
}

export function claimIdempotencyKey(run: Run): StepResult {
  const claiming = keyClaimOf(run);
  return claiming ? claiming.then((claim) => afterKeyClaim(run, claim)) : undefined;
}

async function afterKeyClaim(run: Run, claim: KeyClaim): Promise<RunOutcome | undefined> {
  if (claim.status === 'acquired') return undefined;
  if (claim.status === 'done') {
    // The key's success is this task's outcome too: stored under this id, acked, not run again.
    // Its page shows this message (payload, enqueued) and this worker; no handler ran for it. It
    // finished now: the original's finishedAt may come before this message was even enqueued.
    const { payload: _p, payloadOmitted: _o, startedAt: _s, worker: _w, ...outcome } = claim.record; // the original's run, not this one's
    await settle(run, ranHere(run, { ...outcome, id: run.message.id, queue: run.message.queue, task: run.message.task, finishedAt: Date.now() }));
    return 'duplicate';
  }
  await settling(run).release(Date.now() + KEY_BUSY_DELAY_MS);
  return 'yielded';
}

/**
 * Where the store is apart from the broker, its write is not fenced by the ack: a task claim
 * fences it instead, so a delivery whose lease moved on (a stale owner) can never store its outcome.
 */
export function claimTaskId(run: Run): StepResult {
  return run.storeApart ? taskClaimOf(run).then((claim) => afterTaskClaim(run, claim)) : undefined;
}

async function afterTaskClaim(run: Run, claim: KeyClaim): Promise<RunOutcome | undefined> {
  if (claim.status === 'acquired') return undefined;
  if (claim.status === 'done') {
    const { record } = claim;
    if (record.state === 'failed') {
      // An earlier delivery stored the failure, then ended before dead-lettering it (crash, lost
      // lease): the failure still goes to the dead-letter place, with the stored error.
      const error = record.error ?? { name: 'Error', message: 'no error was recorded' };
      const reason = `failed after ${record.attempts} attempt(s): ${error.message} (stored by an earlier delivery that ended before dead-lettering it)`;
      run.emit({ type: 'task:failed', message: run.message, attempt: run.attempt, error, reason });
      await settling(run).deadLetter(reason, undefined, error);
      return 'failed';
    }
    // Another delivery of this id finished it (a redelivery, or a resent publish): reuse its record.
    await settling(run).ack();
    return 'duplicate';
  }
  await settling(run).release(Date.now() + KEY_BUSY_DELAY_MS);
  return 'yielded';
}
