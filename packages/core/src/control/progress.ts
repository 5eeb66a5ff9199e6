import type { Connection } from '../app.js';
import type { TaskRef } from '../results.js';
import { withTimeout } from '../timeout.js';
import { BackendError } from '../errors.js';
import { coordinationOf } from './state.js';

/** `progress/<task id>` in the task's queue scope. */
const PROGRESS = 'progress';

/** What `handle.progress()` reads: the last value a handler reported, and when. */
export interface Progress {
  value: unknown;
  at: number;
}

/**
 * Records a task's progress (`ctx.progress`), kept as long as its result. Bounded by `boundMs`
 * (the worker's lease): a store that does not answer fails the call, not the worker.
 */
export async function reportProgress(conn: Connection, ref: TaskRef, value: unknown, ttlMs: number, boundMs: number): Promise<void> {
  const record: Progress = { value, at: Date.now() };
  const write = coordinationOf(conn, 'ctx.progress').putRecord({ scope: ref.queue, kind: PROGRESS, id: ref.id }, record, ttlMs);
  await withTimeout(write, boundMs, () => new BackendError(`the store did not record the progress of task ${ref.id} within ${boundMs} ms`));
}

/** The last progress reported for a task, or null when none was (or it expired with its result). */
export async function readProgress(conn: Connection, ref: TaskRef): Promise<Progress | null> {
  const [record] = await coordinationOf(conn, 'progress').getRecords(ref.queue, PROGRESS, [ref.id]);
  return (record as Progress | null) ?? null;
}
