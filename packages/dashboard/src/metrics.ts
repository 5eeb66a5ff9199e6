import { Registry } from 'prom-client';
import { TASK_OUTCOMES, queuePaused, queueTasks, setQueueDepths, taskRetries, tasksTotal, workersOnline } from '@celeriac/worker';
import type { Sampler } from './sampler.js';

/**
 * The dashboard's `/metrics` (definitions shared with the worker's, in @celeriac/worker):
 * 1. Queue depths, paused flags and workers online from the sampler's latest snapshot: a scrape
 *    costs the broker nothing more (the route answers 503 while the sampler's reads fail).
 * 2. `celeriac_tasks_total` and `celeriac_task_retries_total` accumulated from the workers'
 *    registry counts (their deltas), so they only grow while the dashboard runs. No duration
 *    histogram: the dashboard does not see runs.
 * 3. A (queue, task) pair with nothing new for `STALE_LABELS_MS` (a day) loses its series there, so
 *    renamed tasks and removed queues do not grow the scrape forever (Prometheus reads a series
 *    that comes back as a counter reset, which `rate()` handles).
 */
export const STALE_LABELS_MS = 86_400_000;

export function dashboardMetrics(sampler: Sampler, now: () => number = Date.now): Registry {
  const registry = new Registry();
  queueTasks(registry, function () {
    const latest = sampler.latest;
    this.reset();
    for (const q of latest?.queues ?? []) setQueueDepths(this, q);
  });
  queuePaused(registry, function () {
    const latest = sampler.latest;
    this.reset();
    for (const q of latest?.queues ?? []) this.set({ queue: q.queue }, q.paused ? 1 : 0);
  });
  workersOnline(registry, function () {
    const latest = sampler.latest;
    this.set(latest?.workers.length ?? 0);
  });
  const tasks = tasksTotal(registry);
  const retries = taskRetries(registry);
  const lastChanged = new Map<string, { queue: string; task: string; at: number }>();
  let pruned = now();
  sampler.onDeltas((deltas) => {
    const at = now();
    for (const d of deltas) {
      for (const outcome of TASK_OUTCOMES) tasks.inc({ queue: d.queue, task: d.task, outcome }, d[outcome]);
      retries.inc({ queue: d.queue, task: d.task }, d.retried);
      lastChanged.set(`${d.queue}\u0000${d.task}`, { queue: d.queue, task: d.task, at });
    }
    if (at - pruned < 60_000) return;
    pruned = at;
    for (const [key, { queue, task, at: changed }] of lastChanged) {
      if (at - changed < STALE_LABELS_MS) continue;
      lastChanged.delete(key);
      for (const outcome of TASK_OUTCOMES) tasks.remove({ queue, task, outcome });
      retries.remove({ queue, task });
    }
  });
  return registry;
}
