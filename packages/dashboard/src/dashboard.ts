import type { IncomingMessage, ServerResponse } from 'node:http';
import type { App } from '@celeriac/core';
import type { Registry } from 'prom-client';
import { checkAccess, checkAction, type AccessRules } from './access.js';
import { dashboardMetrics } from './metrics.js';
import { parseDashboardOptions, type DashboardOptions, type DashboardSettings } from './options.js';
import { HttpError, readJsonBody, sendError, sendJson, setSecurityHeaders } from './respond.js';
import { ROUTES, type Route } from './routes.js';
import { Sampler } from './sampler.js';
import { StaticFiles } from './static.js';

export interface Dashboard {
  /** A plain Node handler: node:http, Express (`app.use('/admin', handler)`), Fastify and Hono through their Node adapters. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Stops the sampler (the app stays open: it is yours). */
  close(): Promise<void>;
  /** The Prometheus registry behind `/metrics`, to add your own metrics or serve it elsewhere. */
  registry: Registry;
}

/**
 * The dashboard over one app:
 * 1. Checks every request (host, token, method, content type, origin: access.ts) and sets the
 *    security headers.
 * 2. Answers /api/* (routes.ts) and /metrics from one sampler, so open pages cost the broker what
 *    one does.
 * 3. Serves the built pages for every other GET, under the path it is mounted at.
 */
export function createDashboard(app: App, options?: DashboardOptions): Dashboard {
  const settings = parseDashboardOptions(options);
  const sampler = new Sampler(app, settings);
  const registry = dashboardMetrics(sampler);
  const files = new StaticFiles();
  const rules: AccessRules = { token: settings.token, allowedHosts: settings.allowedHosts };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    setSecurityHeaders(res);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const path = pathOf(req, settings);
    const api = path === '/api' || path.startsWith('/api/');
    checkAccess(req, rules, api || path === '/metrics');
    if (api) return answerApi(req, res, method, path);
    if (method !== 'GET') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here: pages are read with GET`, { Allow: 'GET, HEAD' });
    if (path === '/metrics') {
      await sampler.current();
      const text = await registry.metrics();
      res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
      return void res.end(text);
    }
    if (files.isAsset(path)) return files.serveAsset(req, res, path);
    if (path.startsWith('/assets/')) throw new HttpError(404, 'NOT_FOUND', `no asset ${path}`);
    return files.servePage(res, basePathOf(req, settings));
  }

  async function answerApi(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const segments = path.split('/').filter(Boolean).slice(1).map(decodeSegment);
    const matching = ROUTES.map((r) => ({ r, params: match(r, segments) })).filter((m) => m.params !== null);
    if (matching.length === 0) throw new HttpError(404, 'NOT_FOUND', `no API endpoint ${path} (see the dashboard's API documentation)`);
    const found = matching.find((m) => m.r.method === method);
    if (!found) {
      const allow = [...new Set(matching.map((m) => m.r.method))].join(', ');
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}: use ${allow}${allow === 'POST' ? ' (actions are POST only)' : ''}`, { Allow: allow });
    }
    if (method === 'POST') checkAction(req, rules);
    const body = method === 'POST' ? await readJsonBody(req) : {};
    const query = new URL(req.url ?? '/', 'http://dashboard.invalid').searchParams;
    sendJson(res, 200, await found.r.run({ app, sampler, settings, params: found.params!, query, body }));
  }

  return {
    handler: (req, res) => void handle(req, res).catch((err: unknown) => sendError(res, err)),
    close: async () => sampler.close(),
    registry,
  };
}

function match(route: Route, segments: string[]): Record<string, string> | null {
  if (route.path.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (const [i, part] of route.path.entries()) {
    if (part.startsWith(':')) params[part.slice(1)] = segments[i]!;
    else if (part !== segments[i]) return null;
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `bad percent-encoding in the path: ${segment}`);
  }
}

/** The request's path under the dashboard (a `basePath` still on `req.url` is taken off). */
function pathOf(req: IncomingMessage, settings: DashboardSettings): string {
  const path = urlPath(req.url);
  const base = settings.basePath;
  if (base && (path === base || path.startsWith(`${base}/`))) return path.slice(base.length) || '/';
  return path;
}

/** Where the dashboard is mounted: `basePath`, else what the framework stripped off `req.url` (Express keeps it in `originalUrl`). */
export function basePathOf(req: IncomingMessage, settings: DashboardSettings): string {
  if (settings.basePath !== undefined) return settings.basePath;
  const original = (req as { originalUrl?: unknown }).originalUrl;
  if (typeof original !== 'string') return '';
  const full = urlPath(original);
  const rest = urlPath(req.url);
  if (rest === '/' && !full.endsWith('/')) return full;
  return full.endsWith(rest) ? full.slice(0, full.length - rest.length).replace(/\/$/, '') : '';
}

function urlPath(url: string | undefined): string {
  const path = (url ?? '/').split(/[?#]/)[0]!;
  return path.startsWith('/') ? path : `/${path}`;
}
