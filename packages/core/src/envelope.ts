import { z } from 'zod';
import { describeIssues, ValidationError } from './errors.js';
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

export interface ParseExpectations {
  /** The queue the message was taken from: an envelope naming another queue is refused. */
  queue?: string;
  /** Largest accepted size in bytes (`BrokerOptions.maxMessageBytes`). */
  maxBytes?: number;
}

/**
 * Parses one message off the wire; never throws, so a bad message can be dead-lettered with its
 * reason. Every backend parses arrivals here, so the reasons read the same everywhere.
 */
export function parseMessage(raw: string, expect: ParseExpectations = {}): ParsedMessage {
  // Cheap bound first: a UTF-16 length under max/3 cannot exceed max bytes in UTF-8.
  if (expect.maxBytes !== undefined && raw.length * 3 > expect.maxBytes) {
    const bytes = Buffer.byteLength(raw);
    if (bytes > expect.maxBytes) return { ok: false, reason: `oversized message: ${bytes} bytes, over the limit of ${expect.maxBytes} (maxMessageBytes)` };
  }
  const parsed = parseEnvelope(raw);
  if (parsed.ok && expect.queue !== undefined && parsed.message.queue !== expect.queue) {
    return { ok: false, reason: `misrouted message: its envelope names queue "${parsed.message.queue}" but it arrived on "${expect.queue}"` };
  }
  return parsed;
}

function parseEnvelope(raw: string): ParsedMessage {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { ok: false, reason: `malformed message: not JSON (${(err as Error).message})` };
  }
  if (isPlainEnvelope(json)) return { ok: true, message: json };
  const parsed = taskMessageSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: `malformed message: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}` };
  return { ok: true, message: parsed.data };
}

/**
 * The wire form of a message. With `maxBytes` (`BrokerOptions.maxMessageBytes`) it refuses a
 * message that would encode larger: backends encode every message of a publish here before
 * sending any, so an oversized one fails its whole `publish` (and so the caller's enqueue) with
 * this one error, and nothing is sent.
 */
export function encodeMessage(message: TaskMessage, maxBytes?: number): string {
  const raw = JSON.stringify(message);
  if (maxBytes !== undefined && raw.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(raw);
    if (bytes > maxBytes) {
      throw new ValidationError(
        'INVALID_MESSAGE',
        `message too large: task "${message.task}" (id ${message.id}) encodes to ${bytes} bytes, over the limit of ${maxBytes} (maxMessageBytes); pass a reference (a key or URL) to the data instead, or raise createApp({ maxMessageBytes })`,
      );
    }
  }
  return raw;
}

/** Checks a message a producer is about to publish; throws a ValidationError naming the field. */
export function assertValidMessage(message: TaskMessage): TaskMessage {
  if (isPlainEnvelope(message)) return message;
  const parsed = taskMessageSchema.safeParse(message);
  if (!parsed.success) {
    throw new ValidationError('INVALID_MESSAGE', `invalid task message: ${describeIssues(parsed.error)}`);
  }
  return parsed.data;
}

const KEYS = 14; // v id task queue payload attempt maxAttempts eta expiresAt priority idempotencyKey trace createdAt lastError
const ID = /^[A-Za-z0-9_.:-]+$/;

const int = (x: unknown): x is number => Number.isSafeInteger(x);
const intOrNull = (x: unknown) => x === null || int(x);
const traceField = (x: unknown) => x === undefined || (typeof x === 'string' && x.length <= 128);

/**
 * The fast path of the envelope check that runs on every publish and every fetch: zod's parse
 * was the largest celeriac-side cost in the AMQP profiles, for messages that are nearly always the
 * plain ones `Task` builds. True only for a message the schema certainly accepts *unchanged*:
 * a plain object with exactly the v1 keys, each value inside the schema's bounds (integers must
 * be safe, `lastError` null, `trace` plain). Everything else — every invalid message included —
 * goes to `taskMessageSchema`, which decides and words the error. Never looser than the schema
 * (`envelope.test.ts` holds it to that).
 */
export function isPlainEnvelope(m: unknown): m is TaskMessage {
  if (typeof m !== 'object' || m === null || Object.getPrototypeOf(m) !== Object.prototype) return false;
  const o = m as Record<string, unknown>;
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  if (n !== KEYS) return false;
  const { id, task, queue, idempotencyKey: key, trace } = o;
  if (o.v !== 1 || o.payload === undefined || o.lastError !== null) return false;
  if (typeof id !== 'string' || id.length < 1 || id.length > 200 || !ID.test(id)) return false;
  if (typeof task !== 'string' || !taskNamePattern.test(task) || typeof queue !== 'string' || !queueNamePattern.test(queue)) return false;
  if (!int(o.attempt) || o.attempt < 1 || !int(o.maxAttempts) || o.maxAttempts < 1) return false;
  if (!intOrNull(o.eta) || !intOrNull(o.expiresAt) || !int(o.createdAt)) return false;
  if (!int(o.priority) || o.priority < 0 || o.priority > MAX_PRIORITY) return false;
  if (key !== null && (typeof key !== 'string' || key.length < 1 || key.length > 512)) return false;
  if (typeof trace !== 'object' || trace === null || Object.getPrototypeOf(trace) !== Object.prototype) return false;
  for (const k in trace) {
    if (!Object.hasOwn(trace, k)) continue;
    if (k !== 'traceId' && k !== 'parentId') return false;
  }
  const t = trace as Record<string, unknown>;
  return traceField(t.traceId) && traceField(t.parentId) && (!('traceId' in t) || t.traceId !== undefined) && (!('parentId' in t) || t.parentId !== undefined);
}
