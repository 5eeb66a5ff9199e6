import { TaskRevokedError, toErrorInfo } from '../errors.js';
import type { Run, RunOutcome, StepResult } from '../execution.js';
import { record, settle } from '../settlement.js';

/**
 * The pipeline step for revocations: a revoked task is not run. The worker's view of the
 * revocations is in memory (`RunOptions.revoked`, refreshed when the control version changes), so
 * this step costs no round trip.
 */
export function notRevoked(run: Run): StepResult {
  const revoked = run.revoked;
  const revocation = revoked === undefined || revoked.size === 0 ? undefined : revoked.get(run.message.id);
  // A revocation that named a queue applies there only (task ids are unique per queue).
  if (revocation === undefined || (revocation.queue !== null && revocation.queue !== run.message.queue)) return undefined;
  return settleRevoked(run);
}

/** Ends the task `revoked`: stored as its final result and acked, never retried. */
export async function settleRevoked(run: Run): Promise<RunOutcome> {
  const error = toErrorInfo(new TaskRevokedError(run.message.id));
  run.emit({ type: 'task:failed', message: run.message, attempt: run.attempt, error, reason: error.message });
  await settle(run, record(run, 'revoked', { error }));
  return 'revoked';
}
