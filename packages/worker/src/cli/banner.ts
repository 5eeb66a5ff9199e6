import { readFileSync } from 'node:fs';
import { MemoryBroker, redactUrl, type App, type Connection, type Logger } from '@celeriac/core';
import type { Worker } from '../worker.js';
import { seconds } from './task-lines.js';
import type { LogFormat } from './args.js';

/** This package's version (src/cli/ and dist/cli/ both sit two levels under package.json). */
export function celeriacVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * What a person checks first when a worker starts: which celeriac, which broker (password hidden),
 * which queues and tasks, how many at once. One block at info: lines in `pretty`, one line of
 * fields in `json`.
 */
export function logBanner(logger: Logger, format: LogFormat, app: App, conn: Connection, worker: Worker, metricsUrl?: string): void {
  const { concurrency, leaseMs, beat } = worker.options;
  const facts = {
    version: celeriacVersion(),
    broker: brokerOf(conn),
    ...(conn.results !== conn.broker.results ? { results: 'a store of its own (set in the app)' } : {}),
    queues: worker.queues,
    concurrency,
    leaseMs,
    tasks: [...app.tasks.keys()].sort(),
    ...(metricsUrl ? { metrics: metricsUrl } : {}),
    ...(beat ? { schedules: [...app.schedules.values()].map((s) => `${s.name} (${s.expression}${s.tz === 'UTC' ? '' : `, ${s.tz}`}) → ${s.task.name}`) } : {}),
  };
  if (format === 'json') return logger.info(facts, 'celeriac worker starting');
  const lines = [
    `celeriac ${facts.version} worker`,
    `  broker       ${facts.broker}`,
    ...(facts.results ? [`  results      ${facts.results}`] : []),
    `  queues       ${facts.queues.join(', ')}`,
    `  concurrency  ${concurrency} (lease ${seconds(leaseMs)})`,
    `  tasks        ${facts.tasks.join(', ') || '(none registered)'}`,
    ...(facts.metrics ? [`  metrics      ${facts.metrics}`] : []),
    ...(facts.schedules ? [`  schedules    ${facts.schedules.join('; ') || '(none declared)'}`] : []),
  ];
  logger.info(lines.join('\n'));
}

/**
 * The broker URL as the command knows it (`--broker` or CELERIAC_BROKER_URL, where the app reads
 * it), password hidden. An app that sets its URL itself does not say it: the banner says so.
 */
function brokerOf(conn: Connection): string {
  if (conn.broker instanceof MemoryBroker) return 'memory (in this process)';
  const url = process.env.CELERIAC_BROKER_URL;
  return url ? redactUrl(url) : 'set in the app (CELERIAC_BROKER_URL is not set)';
}

/**
 * The memory broker lives in this process: tasks enqueued by any other process (a web server, a
 * script) never reach it, which is the first surprise of a worker started on memory:// from the
 * command line. Said once, at start.
 */
export function warnIfInProcess(logger: Logger, conn: Connection): void {
  if (!(conn.broker instanceof MemoryBroker)) return;
  logger.warn(
    'this worker runs on the in-process memory broker: it cannot see tasks enqueued by other processes (only those its own app enqueues); pass --broker redis://… or amqp://… to share a queue',
  );
}
