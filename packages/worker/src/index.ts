/**
 * @celeriac/worker — the runtime that executes tasks, and the `celeriac` command.
 *
 *   import { Worker } from '@celeriac/worker';
 *   const worker = new Worker(app, { queues: ['default'], concurrency: 50 });
 *   worker.on('task:failed', (e) => console.error(e.message.id, e.reason));
 *   await worker.start();   // … later: await worker.stop();
 */
export { Worker } from './worker.js';
export type { WorkerEvents, WorkerOptions } from './worker.js';
export { Scheduler } from './scheduler.js';
export type { ScheduleInfo, SchedulerOptions } from './scheduler.js';
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { loadApp, main } from './cli/main.js';
export { QUEUE_STATES, TASK_OUTCOMES, deadLettersTotal, queuePaused, queueTasks, setQueueDepths, taskDuration, taskRetries, tasksTotal, workersOnline } from './metric-definitions.js';
export type { QueueState, TaskOutcome } from './metric-definitions.js';
export { allowed, allowedHostIssue, assertBindable, hasBearer, hostOf, isLoopback, refuseAccess, type AccessRules, type Refusal } from './http-access.js';
export { SCRAPE_TIMEOUT_MS, workerMetrics } from './metrics.js';
export type { WorkerMetrics } from './metrics.js';
export { METRICS_TOKEN_NAMES, serveMetrics } from './metrics-server.js';
export type { MetricsServer, MetricsServerOptions } from './metrics-server.js';
