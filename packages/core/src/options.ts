import { z } from 'zod';
import { ValidationError } from './errors.js';
import { DEFAULT_BROKER_OPTIONS } from './broker.js';
import { MAX_PRIORITY } from './envelope.js';
import { queueNamePattern, taskIdPattern } from './names.js';

const HOUR_MS = 3_600_000;

const int = (min: number) => z.number().int().min(min);
const epochMs = z.union([z.date().transform((d) => d.getTime()), int(0)]);

export const retryPolicySchema = z
  .object({
    maxAttempts: int(1).default(3),
    backoff: z.enum(['fixed', 'exponential']).default('exponential'),
    delayMs: int(0).default(1_000),
    maxDelayMs: int(0).default(60_000),
    jitter: z.boolean().default(true),
  })
  .strict();
export type RetryPolicy = z.output<typeof retryPolicySchema>;

export const taskOptionsSchema = z
  .object({
    queue: z.string().regex(queueNamePattern, 'must be a valid queue name (A–Z a–z 0–9 _ . -)').optional(),
    retry: retryPolicySchema.prefault({}),
    timeoutMs: int(1).optional(),
    priority: int(0).max(MAX_PRIORITY).default(0),
    /** Store successful results (default true). Off: a success is a bare ack (failures are still stored). */
    keepResult: z.boolean().default(true),
  })
  .strict();
export type TaskOptions = z.output<typeof taskOptionsSchema>;

export const enqueueOptionsSchema = z
  .object({
    /** Your own task id (e.g. to make a retried HTTP request enqueue once); default: a random UUID. */
    id: z.string().min(1).max(200).regex(taskIdPattern, 'must use A–Z a–z 0–9 _ . : -').optional(),
    idempotencyKey: z.string().min(1).max(512).optional(),
    delayMs: int(0).optional(),
    eta: epochMs.optional(),
    expiresInMs: int(1).optional(),
    expiresAt: epochMs.optional(),
    priority: int(0).max(MAX_PRIORITY).optional(),
    queue: z.string().regex(queueNamePattern, 'must be a valid queue name (A–Z a–z 0–9 _ . -)').optional(),
    trace: z.object({ traceId: z.string().max(128).optional(), parentId: z.string().max(128).optional() }).strict().optional(),
  })
  .strict()
  .refine((o) => o.delayMs === undefined || o.eta === undefined, { message: 'give delayMs or eta, not both' })
  .refine((o) => o.expiresInMs === undefined || o.expiresAt === undefined, { message: 'give expiresInMs or expiresAt, not both' });
export type EnqueueOptions = z.input<typeof enqueueOptionsSchema>;
export type ParsedEnqueueOptions = z.output<typeof enqueueOptionsSchema>;

export const appOptionsSchema = z
  .object({
    defaultQueue: z.string().regex(queueNamePattern, 'must be a valid queue name (A–Z a–z 0–9 _ . -)').default('default'),
    resultTtlMs: int(1).default(24 * HOUR_MS),
    idempotencyTtlMs: int(1).default(24 * HOUR_MS),
    /** How long an `enqueue` may take before it rejects (broker down or unreachable). */
    enqueueTimeoutMs: int(100).default(DEFAULT_BROKER_OPTIONS.publishTimeoutMs),
    /** Largest encoded task message, in bytes: bigger payloads are refused at enqueue. */
    maxMessageBytes: int(1024).default(DEFAULT_BROKER_OPTIONS.maxMessageBytes),
    /**
     * Which result records keep the task's payload (for its page and `inspect.task`): `failures`
     * (failed, expired, revoked: a success costs nothing extra), `always`, or `never`. A payload
     * whose JSON is larger than 64 KiB is never kept (the record says `payloadOmitted`).
     */
    keepPayload: z.enum(['failures', 'always', 'never']).default('failures'),
    /** How many dead letters each queue keeps, and for how long. */
    deadLetters: z
      .object({ maxCount: int(1).default(DEFAULT_BROKER_OPTIONS.deadLetters.maxCount), maxAgeMs: int(1).default(DEFAULT_BROKER_OPTIONS.deadLetters.maxAgeMs) })
      .strict()
      .prefault({}),
  })
  .strict();

/**
 * Parses options once, at the edge. Errors name the field, the rule and the value given:
 * `retry.maxAttempts: Too small: expected number to be >=1 (got 0)`.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.join('.');
    const got = valueAt(input, issue.path);
    const shown = got === undefined ? '' : ` (got ${safeJson(got)})`;
    return `${path ? `${path}: ` : ''}${issue.message}${shown}`;
  });
  return fail(`invalid ${what}: ${problems.join('; ')}`);
}

function fail(message: string): never {
  throw new ValidationError('INVALID_OPTIONS', message);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let at: unknown = input;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function safeJson(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
