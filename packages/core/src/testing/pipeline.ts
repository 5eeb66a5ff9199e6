import { createApp, type App } from '../app.js';
import { Attempt } from '../attempt.js';
import type { Delivery } from '../broker.js';
import { runDelivery, type RunOutcome, type TaskEvent } from '../execution.js';
import type { Logger } from '../logger.js';
import { MemoryBroker } from '../memory/broker.js';
import { MemoryResultBackend } from '../memory/results.js';
import { uniqueQueue } from './messages.js';

// Server-free set-ups for the tests of the delivery pipeline's steps (admission, running,
// settlement, claims). Internal to core's tests: not exported from `@celeriac/core/testing`.

export { stallable } from './stall.js';
export { gate } from './messages.js';

export const LEASE = 30_000;

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

const open: App[] = [];

/** Closes every app `pipelineSetup` opened (call it in `afterEach`). */
export async function closePipelineApps(): Promise<void> {
  await Promise.all(open.splice(0).map((a) => a.close()));
}

/**
 * An app on a `MemoryBroker`, with a logger and an event listener that record what they are told.
 * With `storeApart`, results go to a `MemoryResultBackend` of their own (as RabbitMQ + Redis): the
 * task claim and the fenced store then run, since results are not written with the ack.
 */
export function pipelineSetup(options: { storeApart?: boolean; resultTtlMs?: number; idempotencyTtlMs?: number; keepPayload?: 'failures' | 'always' | 'never' } = {}) {
  const broker = new MemoryBroker();
  const store = options.storeApart ? new MemoryResultBackend() : broker.results;
  const queue = uniqueQueue('pl');
  const logs: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: object | string, msg?: string) =>
    void logs.push({ level, fields: (typeof fields === 'string' ? {} : fields) as Record<string, unknown>, msg: typeof fields === 'string' ? fields : (msg ?? '') });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const ttls = { ...(options.resultTtlMs ? { resultTtlMs: options.resultTtlMs } : {}), ...(options.idempotencyTtlMs ? { idempotencyTtlMs: options.idempotencyTtlMs } : {}) };
  const app = createApp({ broker, results: store, defaultQueue: queue, logger, ...ttls, ...(options.keepPayload ? { keepPayload: options.keepPayload } : {}) });
  open.push(app);
  const events: TaskEvent[] = [];

  const fetchOne = async (leaseMs = LEASE): Promise<Delivery> => {
    const [d] = await broker.fetch({ queues: [queue], max: 1, leaseMs, waitMs: 1_000 });
    if (!d) throw new Error(`nothing to fetch on ${queue}`);
    return d;
  };
  /** Runs one delivery through the pipeline (as worker `worker`, if given), recording its events. */
  const run = async (d: Delivery, { attempt = new Attempt(), leaseMs = LEASE, worker }: { attempt?: Attempt; leaseMs?: number; worker?: string } = {}): Promise<RunOutcome> =>
    runDelivery(app, await app.connection(), d, { attempt, leaseMs, onEvent: (e) => events.push(e), worker });
  const warnings = () => logs.filter((l) => l.level === 'warn');
  return { app, broker, store, queue, logs, warnings, events, fetchOne, run };
}

/** `d` with some of its settlement calls replaced (to look at the world at the moment of one, or to refuse it). */
export function intercept(d: Delivery, calls: Partial<Pick<Delivery, 'ack' | 'retry' | 'deadLetter' | 'release'>>): Delivery {
  return {
    message: d.message,
    token: d.token,
    lapses: d.lapses,
    ack: calls.ack ?? ((s) => d.ack(s)),
    retry: calls.retry ?? ((next, at) => d.retry(next, at)),
    deadLetter: calls.deadLetter ?? ((reason, s, e) => d.deadLetter(reason, s, e)),
    release: calls.release ?? ((at) => d.release(at)),
  };
}

