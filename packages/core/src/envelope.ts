import { z } from 'zod';
import { ValidationError } from './errors.js';
import { queueNamePattern, taskNamePattern } from './names.js';

/** Highest priority; priorities run 0 (default) … 9 (most urgent), as RabbitMQ's do. */
export const MAX_PRIORITY = 9;

const errorInfoSchema = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  stack: z.string().optional(),
});

/**
 * The wire format of a task, version 1. JSON only; validated at every boundary (publish, fetch).
 * Times are epoch milliseconds. `attempt` is the attempt this delivery will run (1-based).
 */
export const taskMessageSchema = z.object({
  v: z.literal(1),
  id: z.string().min(1).max(200).regex(/^[A-Za-z0-9_.:-]+$/, 'ids use A–Z a–z 0–9 _ . : -'),
  task: z.string().regex(taskNamePattern, 'invalid task name'),
  queue: z.string().regex(queueNamePattern, 'invalid queue name'),
  // Any JSON value: it comes out of JSON.parse here, and producers send it through a JSON round trip.
  payload: z.unknown(),
  attempt: z.number().int().min(1),
  maxAttempts: z.number().int().min(1),
  eta: z.number().int().nullable(),
  expiresAt: z.number().int().nullable(),
  priority: z.number().int().min(0).max(MAX_PRIORITY),
  idempotencyKey: z.string().min(1).max(512).nullable(),
  trace: z.object({ traceId: z.string().max(128).optional(), parentId: z.string().max(128).optional() }),
  createdAt: z.number().int(),
  lastError: errorInfoSchema.nullable(),
});

export type TaskMessage = z.output<typeof taskMessageSchema>;

export type ParsedMessage = { ok: true; message: TaskMessage } | { ok: false; reason: string };

/** Parses one message off the wire; never throws, so a bad message can be dead-lettered with its reason. */
export function parseMessage(raw: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `malformed message: not JSON (${(err as Error).message})` };
  }
  const parsed = taskMessageSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `malformed message: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}` };
  return { ok: true, message: parsed.data };
}

export function encodeMessage(message: TaskMessage): string {
  return JSON.stringify(message);
}

/** Checks a message a producer is about to publish; throws a ValidationError naming the field. */
export function assertValidMessage(message: TaskMessage): TaskMessage {
  const parsed = taskMessageSchema.safeParse(message);
  if (!parsed.success) {
    throw new ValidationError('INVALID_MESSAGE', `invalid task message: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** Best-effort peek at the id, task and queue of a message that failed validation, for dead letters. */
export function peekIdentity(raw: string): { id: string | null; task: string | null } {
  try {
    const json = JSON.parse(raw) as Record<string, unknown>;
    return {
      id: typeof json.id === 'string' ? json.id : null,
      task: typeof json.task === 'string' ? json.task : null,
    };
  } catch {
    return { id: null, task: null };
  }
}
