import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueStats } from '@celeriac/core';

/**
 * The names, help and labels of celeriac's Prometheus metrics, written once: the worker's
 * `/metrics` and the dashboard's define theirs from here, so a query works against either.
 * Names follow Prometheus conventions (snake case, unit suffix, `_total` on counters).
 */
export const QUEUE_STATES = ['ready', 'delayed', 'in_flight', 'dead'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** Final outcomes counted by `celeriac_tasks_total` (a retried attempt is not final: see `retries`). */
export const TASK_OUTCOMES = ['succeeded', 'failed', 'expired', 'revoked'] as const;
export type TaskOutcome = (typeof TASK_OUTCOMES)[number];

/** Handler run times from 5 ms to 5 min. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

type Collect<T> = (this: T) => void | Promise<void>;

/** `collect` given: the counter is set when scraped, from counts kept elsewhere (the worker's TaskTally). */
const collecting = <T>(collect: Collect<T> | undefined) => (collect ? { collect } : {});

export function tasksTotal(registry: Registry, collect?: Collect<Counter<'queue' | 'task' | 'outcome'>>) {
  return new Counter({ name: 'celeriac_tasks_total', help: 'Tasks that ended, by queue, task name and final outcome (succeeded, failed, expired, revoked).', labelNames: ['queue', 'task', 'outcome'] as const, registers: [registry], ...collecting(collect) });
}

export function taskRetries(registry: Registry, collect?: Collect<Counter<'queue' | 'task'>>) {
  return new Counter({ name: 'celeriac_task_retries_total', help: 'Attempts that failed and were retried, by queue and task name.', labelNames: ['queue', 'task'] as const, registers: [registry], ...collecting(collect) });
}

export function deadLettersTotal(registry: Registry, collect?: Collect<Counter<'queue' | 'task'>>) {
  return new Counter({ name: 'celeriac_dead_letters_total', help: 'Tasks moved to the dead letters, by queue and task name.', labelNames: ['queue', 'task'] as const, registers: [registry], ...collecting(collect) });
}

export function taskDuration(registry: Registry) {
  return new Histogram({ name: 'celeriac_task_duration_seconds', help: 'Handler run time of each attempt, by queue, task name and outcome (succeeded, failed, retried).', labelNames: ['queue', 'task', 'outcome'] as const, buckets: DURATION_BUCKETS, registers: [registry] });
}

/** Queue depths; `collect` sets them when scraped (read from the broker then, bounded by the caller). */
export function queueTasks(registry: Registry, collect: Collect<Gauge<'queue' | 'state'>>) {
  return new Gauge({ name: 'celeriac_queue_tasks', help: 'Tasks in each queue by state: ready, delayed, in_flight (leased by a worker), dead (dead letters).', labelNames: ['queue', 'state'] as const, registers: [registry], collect });
}

/** Sets a queue's four depth gauges (`celeriac_queue_tasks`) from its counts. */
export function setQueueDepths(gauge: Gauge<'queue' | 'state'>, s: QueueStats): void {
  gauge.set({ queue: s.queue, state: 'ready' }, s.ready);
  gauge.set({ queue: s.queue, state: 'delayed' }, s.delayed);
  gauge.set({ queue: s.queue, state: 'in_flight' }, s.inFlight);
  gauge.set({ queue: s.queue, state: 'dead' }, s.dead);
}

export function queuePaused(registry: Registry, collect: Collect<Gauge<'queue'>>) {
  return new Gauge({ name: 'celeriac_queue_paused', help: '1 while the queue is paused (workers do not fetch from it), else 0.', labelNames: ['queue'] as const, registers: [registry], collect });
}

export function workersOnline(registry: Registry, collect: Collect<Gauge>) {
  return new Gauge({ name: 'celeriac_workers_online', help: 'Workers in the registry now (a killed worker drops out within three heartbeats).', registers: [registry], collect });
}
