import type { App, Connection } from '../app.js';
import type { RedriveResult } from '../broker.js';
import { ValidationError } from '../errors.js';
import { DEAD_LETTER_NOT_FOUND } from '../redrive.js';
import { GLOBAL_SCOPE } from '../coordination.js';
import { assertQueueName, assertTaskId } from '../names.js';
import { CONTROL_POLL_MS, coordinationOf, KINDS, MIN_REVOCATION_TTL_MS, readControlState, type PauseRecord, type Revocation } from './state.js';

export interface RevokeOptions {
  /** Also abort the task if it is running: `ctx.signal` aborts with a `TaskRevokedError` (default false). */
  terminate?: boolean;
  /** The task's queue, when known: a task already finished there is reported, not revoked. */
  queue?: string;
}

export type RevokeResult =
  /** Kept for the revocation TTL: the task is not run (nor retried) by any worker from now on. */
  | { id: string; status: 'revoked' }
  /** The task had already finished: nothing changed. */
  | { id: string; status: 'finished'; state: string };

/**
 * Steering a running system (`app.control`). Every change is a record in the coordination store
 * plus a version bump: workers poll the version once a second and apply what changed.
 * On a store that keeps no shared state (RabbitMQ alone) revoke, pause and resume reject with a
 * `ControlUnavailableError` that names the fix; redrive, discard and purge work on every broker.
 */
export class Control {
  constructor(private readonly app: App) {}

  /**
   * Revokes a task: a waiting or delayed one is never run and ends `revoked`; a running one
   * finishes unless `terminate` is set. Kept for the result TTL, at least 7 days, across restarts.
   * A task a worker starts within about a second of the revoke may still start (`terminate` ends it).
   */
  async revoke(id: string, options: RevokeOptions = {}): Promise<RevokeResult> {
    assertTaskId(id);
    const conn = await this.app.connection();
    const coordination = coordinationOf(conn, 'revoke');
    if (options.queue !== undefined) {
      const finished = await conn.results.get({ id, queue: assertQueueName(options.queue) });
      if (finished) return { id, status: 'finished', state: finished.state };
    }
    const revocation: Revocation = { queue: options.queue ?? null, terminate: options.terminate ?? false, at: Date.now() };
    const ttlMs = Math.max(this.app.options.resultTtlMs, MIN_REVOCATION_TTL_MS);
    await coordination.putRecord({ scope: GLOBAL_SCOPE, kind: KINDS.revoked, id }, revocation, ttlMs);
    await coordination.bumpVersion(GLOBAL_SCOPE);
    return { id, status: 'revoked' };
  }

  /** Stops every worker fetching from `queue` within about a second; running tasks finish; enqueueing still works. Durable. */
  async pause(queue: string): Promise<void> {
    const coordination = coordinationOf(await this.app.connection(), 'pause');
    const record: PauseRecord = { at: Date.now() };
    await coordination.putRecord({ scope: GLOBAL_SCOPE, kind: KINDS.paused, id: assertQueueName(queue) }, record, null);
    await coordination.bumpVersion(GLOBAL_SCOPE);
  }

  /** Lets workers fetch from `queue` again. Resolves `false` when it was not paused. */
  async resume(queue: string): Promise<boolean> {
    const coordination = coordinationOf(await this.app.connection(), 'resume');
    const was = await coordination.deleteRecord({ scope: GLOBAL_SCOPE, kind: KINDS.paused, id: assertQueueName(queue) });
    await coordination.bumpVersion(GLOBAL_SCOPE);
    return was;
  }

  /**
   * Puts dead letters back on their queue as fresh tasks (attempt 1, same id, the dead reason kept
   * as `lastError`, no expiry): those named by `ids`, or all of them. A letter that is not a valid
   * message stays, refused with why. A revocation of a redriven task is lifted (redriving is the
   * newer decision). Works on every broker (dead letters live in the broker).
   */
  async redrive(queue: string, options: { ids?: readonly string[] } = {}): Promise<RedriveResult> {
    const conn = await this.app.connection();
    assertQueueName(queue);
    // The letters there now decide: only those are prepared for the move (revocations lifted,
    // outcomes forgotten) and moved. A named id not among them is refused as not found, never moved
    // unprepared (on RabbitMQ a listing under way elsewhere hides the letters it holds; moved after
    // all, such a letter would meet its old failed outcome and be buried again without running).
    // Ids only where the backend can: a listing of letters stops at a byte budget (Broker.deadLetters).
    const broker = conn.broker;
    const dead = new Set(broker.deadLetterIds ? await broker.deadLetterIds(queue) : (await broker.deadLetters(queue, this.app.options.deadLetters.maxCount)).map((d) => d.id));
    const ids = options.ids ?? [...dead];
    const letters = ids.filter((id) => dead.has(id));
    const unseen = ids.filter((id) => !dead.has(id)).map((id) => ({ id, reason: DEAD_LETTER_NOT_FOUND }));
    if (letters.length === 0) return { redriven: [], refused: unseen };
    const withUnseen = (result: RedriveResult): RedriveResult => ({ redriven: result.redriven, refused: [...result.refused, ...unseen] });
    await this.#liftRevocations(conn, queue, letters);
    if (conn.results === conn.broker.results) return withUnseen(await conn.broker.redrive(queue, { ids: letters }));
    // A store apart from the broker still holds the failed outcome: the task claim would say "done"
    // and the redriven task be skipped. Forgotten before the move (no worker may see it after), and
    // put back for every letter still dead afterwards (refused, or the move failed midway).
    const refs = letters.map((id) => ({ id, queue }));
    const outcomes = await Promise.all(refs.map((ref) => conn.results.get(ref)));
    await conn.results.forget(refs);
    let result: RedriveResult | undefined;
    try {
      result = await conn.broker.redrive(queue, { ids: letters });
      return withUnseen(result);
    } finally {
      const moved = new Set(result?.redriven ?? []);
      await Promise.all(
        outcomes.map((record) => {
          if (!record || moved.has(record.id)) return undefined;
          const ttlMs = Math.max(this.app.options.resultTtlMs, record.idempotencyKey === null ? 0 : this.app.options.idempotencyTtlMs);
          return conn.results.store({ record, ttlMs, keyTtlMs: this.app.options.idempotencyTtlMs });
        }),
      );
    }
  }

  /**
   * Redriving is the newer decision: the revocations of the letters being redriven (for this queue,
   * or for any) are lifted, and the call waits until every worker has polled the change, so none
   * settles the redriven task as revoked from its memory.
   */
  async #liftRevocations(conn: Connection, queue: string, ids: readonly string[]): Promise<void> {
    const coordination = conn.results.coordination;
    if (!coordination || ids.length === 0) return;
    const revocations = (await coordination.getRecords(GLOBAL_SCOPE, KINDS.revoked, ids)) as (Revocation | null)[];
    const lift = ids.filter((_, i) => revocations[i] && (revocations[i]!.queue === null || revocations[i]!.queue === queue));
    if (lift.length === 0) return;
    try {
      await Promise.all(lift.map((id) => coordination.deleteRecord({ scope: GLOBAL_SCOPE, kind: KINDS.revoked, id })));
    } finally {
      await coordination.bumpVersion(GLOBAL_SCOPE);
    }
    await new Promise((resolve) => setTimeout(resolve, 2 * CONTROL_POLL_MS + 500));
  }

  /** Removes the named dead letters for good; resolves with how many it removed. */
  async discard(queue: string, options: { ids: readonly string[] }): Promise<number> {
    if (!Array.isArray(options?.ids) || options.ids.length === 0) throw new ValidationError('INVALID_OPTIONS', 'discard: name the dead letters to remove, { ids: [...] } (see app.inspect.deadLetters)');
    return (await this.app.connection()).broker.discard(assertQueueName(queue), { ids: options.ids });
  }

  /** Removes every ready and delayed task of `queue` (running ones finish); resolves with how many. */
  async purge(queue: string): Promise<number> {
    return (await this.app.connection()).broker.purge(assertQueueName(queue));
  }

  /** The paused queues. */
  async paused(): Promise<string[]> {
    const state = await readControlState(coordinationOf(await this.app.connection(), 'paused queues'));
    return [...state.paused].sort();
  }
}
