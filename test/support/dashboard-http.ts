import { request, type IncomingHttpHeaders } from 'node:http';
import type { App } from '@celeriac/core';
import { serveDashboard, type QueuesView } from '@celeriac/dashboard';

/** Talking to a dashboard in tests: fetch for JSON, a raw request for forged headers, servers closed by the caller. */

export const XSS = '<img src=x onerror=alert(1)>';

export async function api<T>(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(new URL(path, url), init);
  return { status: res.status, body: (await res.json()) as T };
}

export function post<T>(url: string, path: string, body: unknown = {}) {
  return api<T>(url, path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}


/** Serves the dashboard on a free port; the server goes into `served` for the caller's clean-up. */
export async function serve(served: { close(): Promise<void> }[], app: App, options: Parameters<typeof serveDashboard>[1] = {}): Promise<string> {
  const s = await serveDashboard(app, { port: 0, ...options });
  served.push(s);
  return s.url;
}

export const summary = async (url: string, queue: string) => (await api<QueuesView>(url, 'api/queues')).body.queues.find((q) => q.queue === queue);

/** A request with any headers (fetch will not send a forged Host). */
export function raw(url: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const u = new URL(path, url);
  return new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export const errorCode = (text: string) => (JSON.parse(text) as { error: { code: string } }).error.code;
