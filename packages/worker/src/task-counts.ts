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
 * The label of task names the app does not register. Task names come from messages, and messages
 * from anyone: a flood of made-up names must not grow the registry record (written every
 * heartbeat) or the metrics without bound, nor crowd out the app's own tasks. So a name counts
 * under its own label only if `app.task` registered it: the pairs are bounded by the worker's
 * queues × (its registered tasks + 1).
 */
export const UNKNOWN_TASK = '(unknown)';

/** The label a task name is counted and measured under: itself if registered, else `UNKNOWN_TASK`. */
export function taskLabel(tasks: ReadonlyMap<string, unknown>, task: string): string {
  return tasks.has(task) ? task : UNKNOWN_TASK;
}

/**
 * What a worker ended, by queue and task, for its registry record and its metrics.
 * 1. One `count` per settled delivery, from its outcome (after the settlement landed, so a delivery
 *    whose lease was lost and that runs again elsewhere is not counted twice): two map lookups and
 *    an increment; nothing is allocated once a (queue, task) pair has been seen.
 * 2. Names `tasks` (the app's registered tasks) does not hold count under `UNKNOWN_TASK`.
 * 3. Counts only grow.
 */
export class TaskTally {
  readonly #byQueue = new Map<string, Map<string, TaskCounts>>();
  /** Tasks that ended (succeeded, failed, expired, revoked). */
  processed = 0;
  /** Of those, the ones that did not succeed. */
  failed = 0;

  constructor(private readonly tasks: ReadonlyMap<string, unknown>) {}

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

  #counts(queue: string, name: string): TaskCounts {
    const task = taskLabel(this.tasks, name);
    let tasks = this.#byQueue.get(queue);
    let counts = tasks?.get(task);
    if (counts) return counts;
    if (!tasks) this.#byQueue.set(queue, (tasks = new Map()));
    tasks.set(task, (counts = { queue, task, succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0 }));
    return counts;
  }
}
