import { MAX_PRIORITY, queueNamePattern, taskNamePattern, type TaskMessage } from '@celeriac/core';

const KEYS = 14; // v id task queue payload attempt maxAttempts eta expiresAt priority idempotencyKey trace createdAt lastError
const ID = /^[A-Za-z0-9_.:-]+$/;

const int = (x: unknown): x is number => Number.isSafeInteger(x);
const intOrNull = (x: unknown) => x === null || int(x);
const traceField = (x: unknown) => x === undefined || (typeof x === 'string' && x.length <= 128);

/**
 * The fast path of the envelope check that runs on every publish and every arrival: zod's parse
 * was the largest celeriac-side cost in both profiles, for messages that are nearly always the
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
