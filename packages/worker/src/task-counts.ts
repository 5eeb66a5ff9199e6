import type { RunOutcome, TaskCounts } from '@celeriac/core';

/** The TaskCounts field each run outcome adds to; outcomes that end nothing here count nowhere. */
const FIELD: Record<RunOutcome, Exclude<keyof TaskCounts, 'queue' | 'task'> | null> = {
  succeeded: 'succeeded',
  failed: 'failed',
  expired: 'expired',
  revoked: 'revoked',
  retrying: 'retried',
  duplicate: null,
  yielded: null,
  released: null,
  lost: null,
};

/**
 * Distinct (queue, task) pairs counted apart; the rest are counted under `OTHER_TASKS`. Task names
 * come from messages, and messages from anyone: a flood of made-up names must not grow the registry
 * record (written every heartbeat) or the metrics without bound.
 */
export const MAX_COUNTED_TASKS = 1_000;
export const OTHER_TASKS = '(other)';

/**
 * What a worker ended, by queue and task, for its registry record and its metrics.
 * 1. One `count` per settled delivery, from its outcome (after the settlement landed, so a delivery
 *    whose lease was lost and that runs again elsewhere is not counted twice): two map lookups and
 *    an increment; nothing is allocated once a (queue, task) pair has been seen.
 * 2. Counts only grow.
 */
export class TaskTally {
  readonly #byQueue = new Map<string, Map<string, TaskCounts>>();
  #pairs = 0;
  /** Tasks that ended (succeeded, failed, expired, revoked). */
  processed = 0;
  /** Of those, the ones that did not succeed. */
  failed = 0;

  count(queue: string, task: string, outcome: RunOutcome): void {
    const field = FIELD[outcome];
    if (field === null) return;
    this.#counts(queue, task)[field]++;
    if (field === 'retried') return;
    this.processed++;
    if (field !== 'succeeded') this.failed++;
  }

  /** A copy of every (queue, task) pair's counts. */
  list(): TaskCounts[] {
    const out: TaskCounts[] = [];
    for (const tasks of this.#byQueue.values()) for (const counts of tasks.values()) out.push({ ...counts });
    return out;
  }

  #counts(queue: string, task: string): TaskCounts {
    let tasks = this.#byQueue.get(queue);
    let counts = tasks?.get(task);
    if (counts) return counts;
    if (this.#pairs >= MAX_COUNTED_TASKS && task !== OTHER_TASKS) return this.#counts(queue, OTHER_TASKS);
    if (!tasks) this.#byQueue.set(queue, (tasks = new Map()));
    tasks.set(task, (counts = { queue, task, succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0 }));
    this.#pairs++;
    return counts;
  }
}
