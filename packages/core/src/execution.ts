import type { App, Connection } from './app.js';
import type { Attempt } from './attempt.js';
import type { Delivery } from './broker.js';
import type { TaskMessage } from './envelope.js';
import { LeaseLostError, type ErrorInfo } from './errors.js';
import { claimIdempotencyKey, claimTaskId, knownTask, notCrashLooping, notExpired, validPayload } from './admission.js';
import { releaseClaims, StoreStalledError } from './claims.js';
import { runHandler } from './running.js';
import { settleOutcome, settling } from './settlement.js';
import { attemptOf } from './retry.js';
import { notRevoked } from './control/revocation.js';
import type { Revocation } from './control/state.js';
import type { Task } from './task.js';
import type { Logger } from './logger.js';

export { KEY_BUSY_DELAY_MS } from './admission.js';

export type TaskEvent =
  | { type: 'task:started'; message: TaskMessage; attempt: number }
  | { type: 'task:succeeded'; message: TaskMessage; attempt: number; value: unknown; durationMs: number }
  | { type: 'task:retrying'; message: TaskMessage; attempt: number; error: ErrorInfo; delayMs: number; durationMs: number }
  /** `durationMs` where the handler ran (not for a task refused before it: unknown, expired, revoked, invalid). */
  | { type: 'task:failed'; message: TaskMessage; attempt: number; error: ErrorInfo; reason: string; durationMs?: number };

/** How a delivery ended, from the worker's point of view. */
export type RunOutcome = 'succeeded' | 'retrying' | 'failed' | 'expired' | 'revoked' | 'duplicate' | 'yielded' | 'released' | 'lost';

export interface RunOptions {
  /** The attempt's abort switch: the worker aborts it on lease loss or hard stop; a time limit aborts it here. */
  attempt: Attempt;
  leaseMs: number;
  onEvent?: (event: TaskEvent) => void;
  /** The worker's in-memory view of revocations by task id (see control/state.ts): a revoked task is not run. */
  revoked?: ReadonlyMap<string, Revocation>;
  /** Where `ctx.log` writes (bound to the task): the worker's logger; default the app's. */
  logger?: Logger;
  /** The id of the worker running it (its registry record's id), written into the task's result record. */
  worker?: string | undefined;
}

/** One delivery on its way through the pipeline: what the steps have learnt so far. */
export interface Run {
  readonly app: App;
  readonly conn: Connection;
  readonly delivery: Delivery;
  readonly message: TaskMessage;
  /** `attemptOf(delivery)`: the message's attempt plus its earlier deliveries that died unsettled. */
  readonly attempt: number;
  readonly leaseMs: number;
  /** The attempt's abort switch (`ctx.signal`), and the store claims it holds. */
  readonly control: Attempt;
  readonly emit: (event: TaskEvent) => void;
  /** True where results are not written with the ack: the store is another system than the broker. */
  readonly storeApart: boolean;
  readonly revoked: RunOptions['revoked'];
  /** The logger `ctx.log` is bound from. */
  readonly logger: Logger;
  /** `RunOptions.worker`. */
  readonly worker: string | undefined;
  /** Set by `knownTask`. */
  task?: Task;
  /** Set by `validPayload`: the payload as the handler gets it. */
  input?: unknown;
  /** Set by `runHandler`: resolves when the handler really returned or threw (a time limit cannot hasten it). */
  ended?: Promise<void>;
  handlerEnded?: boolean;
  /** Set by `runHandler`: epoch ms when the handler was called (the result record's `startedAt`). */
  startedAt?: number;
  /** Set by `runHandler`, read by `settleOutcome`. */
  outcome?: { ok: true; value: unknown; durationMs: number } | { ok: false; error: unknown; durationMs: number };
}

/** What a step says: an outcome (it settled the delivery), or `undefined` to pass the run on; a promise of either when it did I/O. */
export type StepResult = RunOutcome | undefined | Promise<RunOutcome | undefined>;
export type Step = (run: Run) => StepResult;

/**
 * The rules of celeriac, in the order they apply. A new rule (revoked? rate limited?) is one more
 * step here and one store call in it.
 */
export const PIPELINE: readonly Step[] = [
  knownTask, // unknown task → dead letter naming the fix
  notExpired, // past expiresAt → not run, ends `expired`
  notRevoked, // revoked (app.control.revoke) → not run, ends `revoked`
  validPayload, // payload fails the schema → dead letter with the reason
  notCrashLooping, // deliveries kept dying unsettled past maxAttempts → dead letter saying so
  claimIdempotencyKey, // key has a success → reuse it; key held elsewhere → come back later
  claimTaskId, // store apart from the broker: fence the store with a task claim
  runHandler, // the handler, with ctx.signal and the time limit
  settleOutcome, // store and ack, retry with backoff, or dead letter
];

/**
 * Runs one delivery by the rules of celeriac (`PIPELINE`), and settles it exactly once.
 * A lease lost on the way (the broker refused the settlement, a fenced store refused the write,
 * or the lease keeper gave up) ends it as `lost`: its outcome is not ours to record. A store call
 * that does not answer within `leaseMs` (`withinLease`) gives the delivery back: `released`.
 */
export async function runDelivery(app: App, conn: Connection, delivery: Delivery, options: RunOptions): Promise<RunOutcome> {
  const run = newRun(app, conn, delivery, options);
  try {
    for (const step of PIPELINE) {
      const result = step(run);
      const outcome = result instanceof Promise ? await result : result;
      if (outcome !== undefined) return outcome;
    }
    throw new Error('celeriac bug: the pipeline ended without settling the delivery');
  } catch (err) {
    if (err instanceof LeaseLostError) {
      run.logger.warn({ taskId: delivery.message.id }, err.message);
      return 'lost';
    }
    if (err instanceof StoreStalledError) {
      run.logger.warn({ taskId: delivery.message.id }, err.message);
      // Given back while the lease is ours: no lapse is counted, another worker (or we) runs it.
      await settling(run).release();
      return 'released';
    }
    throw err;
  } finally {
    if (!run.ended) options.attempt.handlerDone();
    // Claims outlive the settlement while the handler still runs (it ignored its signal), so it
    // never runs alongside its own retry or a redelivery; then they go.
    if (options.attempt.claims.length > 0) void (run.ended ?? Promise.resolve()).then(() => releaseClaims(run));
  }
}

function newRun(app: App, conn: Connection, delivery: Delivery, { attempt, leaseMs, onEvent, revoked, logger = app.logger, worker }: RunOptions): Run {
  const message = delivery.message;
  // A listener that throws must not decide a task's fate (it would be redelivered and run again).
  const emit = (event: TaskEvent) => {
    try {
      onEvent?.(event);
    } catch (err) {
      logger.error({ taskId: message.id, event: event.type, err: String(err) }, 'a task event listener threw; the task goes on');
    }
  };
  const storeApart = conn.results !== conn.broker.results;
  return { app, conn, delivery, message, attempt: attemptOf(delivery), leaseMs, control: attempt, emit, storeApart, revoked, logger, worker };
}
