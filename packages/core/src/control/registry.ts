import type { App } from '../app.js';
import { GLOBAL_SCOPE, type Coordination } from '../coordination.js';

/**
 * What the control plane knows without being told: the queues in use, the workers alive, the
 * schedules declared. Each is a kind of record in the global scope of the coordination store.
 */
export const REGISTRY = { queues: 'queues', workers: 'workers', schedules: 'schedules' } as const;

/** How many of each a listing reads at most: far above real deployments, yet bounded. */
export const MAX_LISTED = { queues: 100_000, workers: 10_000, schedules: 10_000 } as const;

/** How often a worker refreshes its record; it lives three heartbeats, so a killed worker vanishes within that. */
export const HEARTBEAT_MS = 2_000;
export const WORKER_TTL_MS = 3 * HEARTBEAT_MS;

export interface ActiveTask {
  id: string;
  task: string;
  queue: string;
  startedAt: number;
}

/** What one worker ended (or retried) of one task in one queue since it started; counts only grow. */
export interface TaskCounts {
  queue: string;
  task: string;
  succeeded: number;
  /** Ended failed (retries used up, or an error that is not retried): these go to the dead letters. */
  failed: number;
  /** Attempts that failed and were retried (each counts once). */
  retried: number;
  expired: number;
  revoked: number;
}

/** A worker's record, as `app.inspect.workers()` returns it. */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  active: ActiveTask[];
  /** Tasks that ended (succeeded, failed, expired, revoked) in this worker since it started. */
  processed: number;
  failed: number;
  /**
   * The same, split by queue and task and by outcome (retries too), for the dashboard's rates and
   * metrics. Absent in records of workers older than 0.2.
   */
  counts?: TaskCounts[];
  startedAt: number;
  lastSeen: number;
  version: string;
}

/** A schedule as its schedulers declare it (`app.inspect.schedules()` adds the runs). */
export interface ScheduleDeclaration {
  name: string;
  task: string;
  queue: string;
  expression: string;
  tz: string;
  /** The period of an `every` schedule, null for cron. */
  periodMs: number | null;
}

/** The mark under which schedulers keep a schedule's last tick (see the worker's Scheduler). */
export const scheduleMarkName = (name: string) => `beat:${name}`;

/** How long a declaration is kept after its last scheduler stopped refreshing it (a removed schedule drops out). */
export const SCHEDULE_TTL_MS = 24 * 3_600_000;

/** Declares the app's schedules (a scheduler's start, then daily): inspect lists them without the app. */
export async function declareSchedules(app: App, coordination: Coordination): Promise<void> {
  await Promise.all(
    [...app.schedules.values()].map((s) => {
      const declaration: ScheduleDeclaration = { name: s.name, task: s.task.name, queue: s.options.queue ?? s.task.options.queue, expression: s.expression, tz: s.tz, periodMs: s.periodMs };
      return coordination.putRecord({ scope: GLOBAL_SCOPE, kind: REGISTRY.schedules, id: s.name }, declaration, SCHEDULE_TTL_MS);
    }),
  );
}

const notedByApp = new WeakMap<App, Set<string>>();

/**
 * Records that `queues` are in use, once per app and queue (a producer's first enqueue, a
 * worker's start): queue discovery costs no round trip per task. Never fails the caller: a store
 * without coordination (RabbitMQ alone) has no index, and a failed write is retried next time.
 */
export function noteQueues(app: App, coordination: Coordination | null, queues: readonly string[]): void {
  if (!coordination) return;
  let noted = notedByApp.get(app);
  if (!noted) notedByApp.set(app, (noted = new Set()));
  for (const queue of queues) {
    if (noted.has(queue)) continue;
    noted.add(queue);
    coordination.putRecord({ scope: GLOBAL_SCOPE, kind: REGISTRY.queues, id: queue }, { seenAt: Date.now() }, null).catch((err: unknown) => {
      noted.delete(queue);
      app.logger.debug({ queue, err: String(err) }, 'could not record the queue in the store (queue discovery); will try again');
    });
  }
}

/** The worker running task `id` now (its registry record lists it), if any. */
export async function runningOn(coordination: Coordination, id: string): Promise<(ActiveTask & { worker: string }) | null> {
  for (const { value } of await coordination.listRecords(GLOBAL_SCOPE, REGISTRY.workers, { limit: MAX_LISTED.workers })) {
    const w = value as WorkerInfo;
    const active = w.active.find((a) => a.id === id);
    if (active) return { worker: w.id, ...active };
  }
  return null;
}
