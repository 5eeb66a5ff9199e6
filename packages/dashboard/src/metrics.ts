import { Registry } from 'prom-client';
import { TASK_OUTCOMES, queuePaused, queueTasks, taskRetries, tasksTotal, workersOnline } from '@celeriac/worker';
import type { Sampler } from './sampler.js';

/**
 * The dashboard's `/metrics` (definitions shared with the worker's, in @celeriac/worker):
 * 1. Queue depths, paused flags and workers online from the sampler's latest snapshot: a scrape
 *    costs the broker nothing more (the route answers 503 while the sampler's reads fail).
 * 2. `celeriac_tasks_total` and `celeriac_task_retries_total` accumulated from the workers'
 *    registry counts (their deltas), so they only grow while the dashboard runs. No duration
 *    histogram: the dashboard does not see runs.
 */
export function dashboardMetrics(sampler: Sampler): Registry {
  const registry = new Registry();
  queueTasks(registry, function () {
    const latest = sampler.latest;
    this.reset();
    for (const q of latest?.queues ?? []) {
      this.set({ queue: q.queue, state: 'ready' }, q.ready);
      this.set({ queue: q.queue, state: 'delayed' }, q.delayed);
      this.set({ queue: q.queue, state: 'in_flight' }, q.inFlight);
      this.set({ queue: q.queue, state: 'dead' }, q.dead);
    }
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
  sampler.onDeltas((deltas) => {
    for (const d of deltas) {
      for (const outcome of TASK_OUTCOMES) tasks.inc({ queue: d.queue, task: d.task, outcome }, d[outcome]);
      retries.inc({ queue: d.queue, task: d.task }, d.retried);
    }
  });
  return registry;
}
