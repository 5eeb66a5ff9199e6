/**
 * The dashboard's JSON API: what every endpoint returns. The pages use exactly this, and scripts
 * may too (the README documents it). Types only, shared by the server and the browser code, so
 * both sides agree at compile time.
 *
 * GET  /api/info                            → Info
 * GET  /api/queues                          → QueuesView           (?points=N rate points per series, default 300, max the history kept)
 * GET  /api/queues/:queue                   → QueueView            (?limit=N tasks per list, default 50, max 500; ?points=N as above)
 *                                                                    404 for a queue nothing knows: not in the workers' registry,
 *                                                                    not paused, not in `queues`, and with nothing in it
 * GET  /api/queues/:queue/dead              → DeadLettersView      (?limit=N, default 100, max 10000)
 * GET  /api/tasks/:id                       → TaskView             (?queue=name to look in one queue only)
 * GET  /api/workers                         → WorkersView
 * GET  /api/schedules                       → SchedulesView
 * POST /api/queues/:queue/pause             → { queue, paused: true }  (404 for a queue nothing knows, as above: a typo pauses nothing)
 * POST /api/queues/:queue/resume            → { queue, paused: false, was: boolean }
 * POST /api/queues/:queue/purge             → { queue, purged: number }
 * POST /api/queues/:queue/redrive           body { ids?: string[] }  → RedriveResult (all when no ids)
 * POST /api/queues/:queue/discard           body { ids: string[] }   → { queue, discarded: number }
 * POST /api/tasks/:id/revoke                body { terminate?: boolean, queue?: string } → RevokeResult
 * GET  /metrics                             → Prometheus text format
 *
 * Every error is JSON, `ApiError`, with the HTTP status: 400 bad input, 401 token missing or
 * wrong, 403 a cross-site request (or, without a token, a Host that is not loopback), 404 not
 * found, 405 wrong method, 413 a body over 64 KiB, 415 a POST that is not JSON, 503 the broker or
 * store cannot answer (or the control plane is not available on this broker), 500 anything else. POST bodies are JSON (`Content-Type: application/json`), at most 64 KiB.
 * When a token is set, every /api and /metrics request needs `Authorization: Bearer <token>`.
 */
import type { DeadLetter, ErrorInfo, QueueDetail, QueueInfo, RedriveResult, RevokeResult, ScheduleRuns, TaskInfo, WorkerInfo } from '@celeriac/core';

export type { RedriveResult, RevokeResult };

export interface ApiError {
  error: {
    /** A stable code: BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, CONTROL_UNAVAILABLE, UNAVAILABLE, INTERNAL, or a celeriac error code (INVALID_NAME for a bad queue name or task id). */
    code: string;
    /** What went wrong and how to fix it, for a person. */
    message: string;
  };
}

export interface Info {
  version: string;
  /** The broker URL with any password or token replaced by `***`. */
  broker: string;
  /** The result store URL (redacted) when it is not the broker. */
  results: string | null;
  /** False on a store that keeps no coordination state (RabbitMQ alone): only queues given with `queues`, their counts and dead letters are shown. */
  control: boolean;
  /** Why `control` is false, and the fix (e.g. "add a Redis result store: --results redis://…"). */
  controlHint: string | null;
  /** Whether requests need the token. */
  tokenRequired: boolean;
  /** How often the pages refresh, ms (at least 1000). */
  refreshMs: number;
}

/**
 * A rate series: tasks per second, one point per `stepMs` (oldest first), the last point ending at
 * `end`. Counted from the workers' registry records (every worker heartbeat), so it covers what
 * the dashboard saw since it started, at most `historyMs` back, and at most `?points=N` points
 * (default 300: the last 5 minutes).
 */
export interface Series {
  stepMs: number;
  end: number;
  processed: number[];
  failed: number[];
}

export interface QueueSummary extends QueueInfo {
  rates: Series;
}

export interface QueuesView {
  at: number;
  queues: QueueSummary[];
  workersOnline: number;
  /** All queues together. */
  rates: Series;
}

export interface QueueView {
  at: number;
  queue: QueueDetail;
  rates: Series;
  /**
   * Up to 20 dead letters, newest first; which 20 is `deadOrder`. The full list is
   * /api/queues/:queue/dead.
   */
  dead: DeadLetterView[];
  /**
   * Which dead letters `dead` holds when there are more than 20: the `'newest'` (memory, Redis), or
   * the `'oldest'` (RabbitMQ, which reads its dead-letter queue from the head). Say which on the page.
   */
  deadOrder: 'newest' | 'oldest';
}

/** A dead letter with its message decoded where it parses. */
export interface DeadLetterView extends DeadLetter {
  /** The task name, when the raw message parses as a task message. */
  task: string | null;
  payload: unknown;
  attempt: number | null;
}

export interface DeadLettersView {
  queue: string;
  letters: DeadLetterView[];
}

export interface TaskView {
  task: TaskInfo;
}

export interface WorkersView {
  at: number;
  workers: WorkerInfo[];
}

export interface SchedulesView {
  at: number;
  schedules: ScheduleRuns[];
}

export type { ErrorInfo };
