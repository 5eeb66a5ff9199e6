import { assertQueueName, parseOptions } from '@celeriac/core';
import { allowedHostIssue } from '@celeriac/worker';
import { z } from 'zod';

/**
 * The dashboard's options, parsed once here (users see `DashboardOptions`, the code uses
 * `DashboardSettings`). Every error names the field and the fix.
 */
/** Core's rule for queue names, with core's message. */
function queueNameRule(name: string, ctx: z.RefinementCtx): void {
  try {
    assertQueueName(name);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
}

/** Default `readTimeoutMs`: how long one read of the queues and workers may take before the API answers 503 (the read goes on). */
export const READ_TIMEOUT_MS = 2_000;

function allowedHostRule(entry: string, ctx: z.RefinementCtx): void {
  const issue = allowedHostIssue(entry);
  if (issue !== null) ctx.addIssue({ code: 'custom', message: issue });
}

const dashboardSchema = z.object({
  /** Queues always listed, besides those the registry knows (on RabbitMQ alone, the only ones listed). */
  queues: z.array(z.string().superRefine(queueNameRule)).default([]),
  /** When set, every /api and /metrics request needs `Authorization: Bearer <token>`. */
  /** Surrounding blanks are dropped (a newline read from a file with the secret). */
  token: z
    .string()
    .transform((t) => t.trim())
    .pipe(z.string().min(1, 'token must not be empty (leave it out for no token)'))
    .nullish()
    .transform((t) => t ?? null),
  /** How far back the rate series go (default 15 min). */
  historyMs: z.number().int().min(60_000, 'historyMs must be at least 60000 (1 min)').max(86_400_000, 'historyMs must be at most 86400000 (24 h)').default(15 * 60_000),
  /** How often the pages refresh (default and minimum 1000). */
  refreshMs: z.number().int().min(1_000, 'refreshMs must be at least 1000').max(60_000, 'refreshMs must be at most 60000').default(1_000),
  /** How long one read of the queues and workers may take before the API answers 503 meanwhile (default 2000); raise it for a store that is always slow. */
  readTimeoutMs: z.number().int().min(100, 'readTimeoutMs must be at least 100').max(60_000, 'readTimeoutMs must be at most 60000').default(READ_TIMEOUT_MS),
  /** Where the dashboard is mounted, e.g. `/admin/queues`; default: what the framework stripped off `req.url` (`req.originalUrl`), else none. */
  basePath: z
    .string()
    .regex(/^(\/[^/?#]+)*\/?$/, 'basePath must be a path such as /admin/queues (no query, no //)')
    .transform((p) => p.replace(/\/$/, ''))
    .optional(),
  /**
   * Host names (the `Host` header, without port) accepted without a token besides loopback ones,
   * e.g. the name of the server the handler is mounted in, behind its own authentication. Without
   * a token, other hosts are refused (DNS rebinding); `*` is refused (set a token instead).
   */
  allowedHosts: z.array(z.string().min(1).superRefine(allowedHostRule)).default([]),
  /** The broker URL shown on /api/info (password hidden); default: the broker's kind. */
  brokerUrl: z.string().optional(),
  /** The result store URL shown on /api/info when it is apart from the broker (password hidden). */
  resultsUrl: z.string().optional(),
});

export type DashboardOptions = z.input<typeof dashboardSchema>;
export type DashboardSettings = z.output<typeof dashboardSchema>;

export function parseDashboardOptions(options: DashboardOptions | undefined): DashboardSettings {
  return parseOptions(dashboardSchema, options ?? {}, 'dashboard options');
}

const serveSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (the URL says which). */
  port: z.number().int().min(0).max(65_535, 'port must be 0…65535').default(5555),
});

export type ServeOptions = DashboardOptions & z.input<typeof serveSchema>;

export function parseServeOptions(options: ServeOptions | undefined): { host: string; port: number } {
  const { host, port } = options ?? {};
  return parseOptions(serveSchema, { host, port }, 'dashboard server options');
}
