import { readFileSync } from 'node:fs';
import { BackendError, ControlUnavailableError, assertQueueName, assertTaskId, describeIssues, parseMessage, redactUrl, withTimeout, type App, type DeadLetter, type QueueDetail, type QueueStats } from '@celeriac/core';
import { BULK_TIMEOUT_MS, OPERATE_TIMEOUT_MS } from '@celeriac/worker/cli';
import { z } from 'zod';
import type { DeadLetterView, DeadLettersView, Info, QueueView, QueuesView, SchedulesView, TaskView, WorkersView } from './api.js';
import type { DashboardSettings } from './options.js';
import { HttpError } from './respond.js';
import type { Sampler } from './sampler.js';

/**
 * The JSON API (api.ts lists it): each route a thin call to `app.inspect` or `app.control`,
 * bounded in time (a broker that does not answer is a 503, not a hung request).
 */
export interface RouteContext {
  app: App;
  sampler: Sampler;
  settings: DashboardSettings;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface Route {
  method: 'GET' | 'POST';
  /** Path segments under /api; `:name` matches one segment. */
  path: string[];
  run(ctx: RouteContext): Promise<unknown>;
}

/** How many dead letters a queue's view shows (the full list is /api/queues/:queue/dead). */
const DEAD_IN_VIEW = 20;

/** Rate points per series when `?points` is not given: the last 5 minutes. */
const DEFAULT_POINTS = 300;

const route = (method: Route['method'], path: string, run: Route['run']): Route => ({ method, path: path.split('/').filter(Boolean), run });

export const ROUTES: Route[] = [
  route('GET', 'info', info),
  route('GET', 'queues', async ({ sampler, query }): Promise<QueuesView> => {
    const points = pointsOf(query, sampler);
    const snap = await sampler.current();
    return { at: snap.at, queues: snap.queues.map((q) => ({ ...q, rates: sampler.series(q.queue, snap.at, points) })), workersOnline: snap.workers.length, rates: sampler.series(null, snap.at, points) };
  }),
  route('GET', 'queues/:queue', async (ctx): Promise<QueueView> => {
    const { app, sampler, params, query } = ctx;
    const limit = limitOf(query, 50, 500);
    const points = pointsOf(query, sampler);
    const [queue, dead, conn] = await bounded(Promise.all([queueDetail(app, params.queue!, limit), app.inspect.deadLetters(params.queue!, { limit: DEAD_IN_VIEW }), app.connection()]));
    if (!queue.paused && isEmpty(queue)) await assertKnown(ctx);
    const at = Date.now();
    return { at, queue, rates: sampler.series(queue.queue, sampler.latest?.at ?? at, points), dead: dead.map(decode).sort((a, b) => b.at - a.at), deadOrder: conn.broker.capabilities.deadLetterOrder };
  }),
  route('GET', 'queues/:queue/dead', async ({ app, params, query }): Promise<DeadLettersView> => {
    const letters = await bounded(app.inspect.deadLetters(params.queue!, { limit: limitOf(query, 100, 10_000) }));
    return { queue: params.queue!, letters: letters.map(decode) };
  }),
  route('GET', 'tasks/:id', async ({ app, params, query }): Promise<TaskView> => {
    const queue = query.get('queue');
    const task = await bounded(app.inspect.task(assertTaskId(params.id!), queue ? { queue } : {}));
    if (!task) throw new HttpError(404, 'NOT_FOUND', `task ${params.id} not found in ${queue ?? 'any known queue'} (never enqueued there, or its result expired)`);
    return { task };
  }),
  route('GET', 'workers', async ({ sampler }): Promise<WorkersView> => {
    const snap = await sampler.current();
    if (!snap.control) throw new ControlUnavailableError('inspect.workers');
    return { at: snap.at, workers: snap.workers };
  }),
  route('GET', 'schedules', async ({ app }): Promise<SchedulesView> => ({ at: Date.now(), schedules: await bounded(app.inspect.schedules()) })),
  route('POST', 'queues/:queue/pause', async (ctx) => {
    const { app, params, body } = ctx;
    // `force`: pause a queue nothing knows yet (ahead of a deploy); the pages never send it.
    const { force } = bodyOf(pauseBody, body);
    if (force) validQueueName(params.queue!);
    else if (isEmpty(await bounded(app.connection().then((conn) => conn.broker.stats(params.queue!))))) await assertKnown(ctx);
    await bounded(app.control.pause(params.queue!));
    return { queue: params.queue, paused: true };
  }),
  route('POST', 'queues/:queue/resume', async ({ app, params }) => ({ queue: params.queue, paused: false, was: await bounded(app.control.resume(params.queue!)) })),
  route('POST', 'queues/:queue/purge', async ({ app, params }) => ({ queue: params.queue, purged: await bounded(app.control.purge(params.queue!), BULK_TIMEOUT_MS) })),
  route('POST', 'queues/:queue/redrive', async ({ app, params, body }) => {
    const { ids } = bodyOf(redriveBody, body);
    return bounded(app.control.redrive(params.queue!, ids === undefined ? {} : { ids }), BULK_TIMEOUT_MS);
  }),
  route('POST', 'queues/:queue/discard', async ({ app, params, body }) => {
    const { ids } = bodyOf(discardBody, body);
    return { queue: params.queue, discarded: await bounded(app.control.discard(params.queue!, { ids }), BULK_TIMEOUT_MS) };
  }),
  route('POST', 'tasks/:id/revoke', async ({ app, params, body }) => {
    const { terminate, queue } = bodyOf(revokeBody, body);
    return bounded(app.control.revoke(params.id!, { terminate: terminate ?? false, ...(queue === undefined ? {} : { queue }) }));
  }),
];

const ids = z.array(z.string().min(1).max(200)).max(10_000);
const redriveBody = z.object({ ids: ids.optional() });
const discardBody = z.object({ ids: ids.min(1, 'name the dead letters to discard: { "ids": ["…"] }') });
const pauseBody = z.object({ force: z.boolean().optional() });
const revokeBody = z.object({ terminate: z.boolean().optional(), queue: z.string().min(1).optional() });

function bodyOf<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new HttpError(400, 'BAD_REQUEST', `bad body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function validQueueName(queue: string): void {
  try {
    assertQueueName(queue);
  } catch (err) {
    throw new HttpError(400, 'BAD_REQUEST', (err as Error).message);
  }
}

function limitOf(query: URLSearchParams, fallback: number, max: number): number {
  const text = query.get('limit');
  if (text === null) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, 'BAD_REQUEST', `limit must be an integer from 1 to ${max} (got ${text})`);
  return n;
}

function pointsOf(query: URLSearchParams, sampler: Sampler): number {
  const max = sampler.rates.capacity;
  const text = query.get('points');
  if (text === null) return Math.min(DEFAULT_POINTS, max);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new HttpError(400, 'BAD_REQUEST', `points must be an integer from 1 to ${max} (the history kept) (got ${text})`);
  return n;
}

function isEmpty(stats: QueueStats): boolean {
  return stats.ready + stats.delayed + stats.inFlight + stats.dead + stats.completed + stats.failed === 0;
}

/**
 * 404 for a queue nothing knows (not in the workers' registry, not paused, not in `queues`; the
 * caller saw it empty), so a typo in a URL shows an error, and pausing it creates no phantom queue.
 */
async function assertKnown({ app, sampler, settings, params }: RouteContext): Promise<void> {
  const queue = params.queue!;
  if (settings.queues.includes(queue)) return;
  // While the sampler's reads fail, the registry itself decides (not a 503 for a queue it knows).
  const snap = await sampler.current().catch(() => null);
  if (snap?.queues.some((q) => q.queue === queue)) return;
  // A queue a worker registered since the sampler's last read: ask the registry itself.
  const control = snap?.control ?? !!(await bounded(app.connection())).results.coordination;
  if (control && (await bounded(app.inspect.queues())).some((q) => q.queue === queue)) return;
  throw new HttpError(404, 'NOT_FOUND', `no queue ${JSON.stringify(queue)}: no worker has served it, it is not paused and it holds no tasks (check the name; to pause it ahead of its workers, POST {"force": true})`);
}

/** Every call to the broker or store has a bound: past it, a 503 that says so. */
function bounded<T>(work: Promise<T>, ms = OPERATE_TIMEOUT_MS): Promise<T> {
  return withTimeout(work, ms, () => new BackendError(`no answer from the broker or store within ${ms / 1_000} s`));
}

/** The queue's detail; where the store keeps no control state (RabbitMQ alone), its counts only. */
async function queueDetail(app: App, queue: string, limit: number): Promise<QueueDetail> {
  try {
    return await app.inspect.queue(queue, { limit });
  } catch (err) {
    if (!(err instanceof ControlUnavailableError)) throw err;
    const stats = await (await app.connection()).broker.stats(queue);
    return { ...stats, paused: false, readyTasks: null, delayedTasks: null, running: [] };
  }
}

/** A dead letter with its message decoded by core's parser, where it parses. */
export function decode(letter: DeadLetter): DeadLetterView {
  const parsed = parseMessage(letter.raw);
  return parsed.ok ? { ...letter, task: parsed.message.task, payload: parsed.message.payload, attempt: parsed.message.attempt } : { ...letter, task: null, payload: null, attempt: null };
}

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

async function info({ app, settings }: RouteContext): Promise<Info> {
  const conn = await bounded(app.connection());
  const control = !!conn.results.coordination;
  const apart = conn.results !== conn.broker.results;
  return {
    version: VERSION,
    broker: settings.brokerUrl === undefined ? `${conn.broker.constructor.name} (set in the app)` : redactUrl(settings.brokerUrl),
    results: apart ? (settings.resultsUrl === undefined ? `${conn.results.constructor.name} (set in the app)` : redactUrl(settings.resultsUrl)) : null,
    control,
    controlHint: control ? null : `${new ControlUnavailableError('Seeing workers, schedules and tasks, and pausing or revoking').message} (celeriac dashboard: --results redis://…)`,
    tokenRequired: settings.token !== null,
    refreshMs: settings.refreshMs,
  };
}
