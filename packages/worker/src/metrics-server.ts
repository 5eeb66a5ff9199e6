import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ValidationError } from '@celeriac/core';
import type { Registry } from 'prom-client';
import { assertBindable, refuseAccess } from './http-access.js';

/** How a token for the worker's metrics is given (named by the refusal to listen without one). */
export const METRICS_TOKEN_NAMES = { flag: '--metrics-token', env: 'CELERIAC_METRICS_TOKEN' } as const;

export interface MetricsServerOptions {
  /** Default 127.0.0.1. Any other address needs `token`. */
  host?: string;
  /** 0 picks a free port (the resolved `url` says which). */
  port: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string | undefined;
}

/** A request must arrive whole within this; a client that sends half a request is cut off. */
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * A connection that sends nothing for this long while no scrape of it is being answered is ended
 * (a silent socket, a half-sent request, an idle keep-alive), so held sockets cannot pile up.
 */
export const IDLE_TIMEOUT_MS = 5_000;
/**
 * A reply must be taken whole within this once it starts being written. The idle timeout spares a
 * socket being answered, and a client that asks and never reads leaves nothing moving on it once
 * the socket buffers are full: without this deadline it would hold the socket for ever.
 */
export const REPLY_TIMEOUT_MS = 10_000;
/** How often Node checks the request and header deadlines (its default, 30 s, let them run 30 s late). */
const DEADLINE_CHECK_MS = 1_000;
/**
 * Guards the worker's file descriptors, not access: connections are counted before any token
 * check, so the cap is far above what scrapers need; idle ones are ended after `IDLE_TIMEOUT_MS`.
 */
export const MAX_CONNECTIONS = 1_024;
/** How long `close()` lets requests in progress finish before it ends every connection. */
export const CLOSE_GRACE_MS = 1_000;

export interface MetricsServer {
  /** Where Prometheus scrapes: `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics for Prometheus.
 * 1. Listens on 127.0.0.1 unless told otherwise; another address without a token is refused
 *    (ValidationError naming `--metrics-token` and CELERIAC_METRICS_TOKEN), see http-access.ts.
 * 2. With a token, a request without the right Bearer header gets 401; anything but GET/HEAD
 *    /metrics gets a JSON error (404, 405).
 * 3. Bounded: a connection silent for `IDLE_TIMEOUT_MS` (no request, or half of one) is ended
 *    within about a second more, a request must arrive whole within `REQUEST_TIMEOUT_MS`, a reply
 *    must be read whole within `REPLY_TIMEOUT_MS` of its start (a slow collection before it is
 *    not counted), and at most `MAX_CONNECTIONS` are open at once (counted before the token
 *    check, hence generous).
 * 4. `close()` stops listening and ends idle keep-alive connections at once, and every other
 *    connection (a scrape in progress, a half-sent request) after `CLOSE_GRACE_MS`, so a stopping
 *    worker always exits.
 */
export async function serveMetrics(registry: Registry, { host = '127.0.0.1', port, token }: MetricsServerOptions): Promise<MetricsServer> {
  assertBindable(host, token, METRICS_TOKEN_NAMES, (m) => new ValidationError('INVALID_OPTIONS', m));
  // Sockets whose request is being answered: a slow collection is not idleness.
  const answering = new WeakSet<object>();
  const server = createServer({ connectionsCheckingInterval: DEADLINE_CHECK_MS }, (req, res) => {
    answering.add(req.socket);
    res.once('close', () => answering.delete(req.socket));
    const refusal = refuseAccess(req, { token: token?.trim() || null, allowedHosts: [] });
    if (refusal) return error(res, refusal.status, refusal.code, refusal.status === 401 ? 'send Authorization: Bearer <token> (the --metrics-token of the worker)' : refusal.message, refusal.headers);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return error(res, 404, 'NOT_FOUND', 'metrics are served at GET /metrics');
    if (req.method !== 'GET' && req.method !== 'HEAD') return error(res, 405, 'METHOD_NOT_ALLOWED', 'use GET /metrics', { Allow: 'GET, HEAD' });
    registry.metrics().then(
      (text) => reply(res, 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' }, req.method === 'HEAD' ? undefined : text),
      (err: unknown) => error(res, 500, 'INTERNAL', `could not collect the metrics: ${String(err)}`),
    );
  });
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  server.timeout = IDLE_TIMEOUT_MS;
  // With a listener here Node leaves timed-out sockets to it: end the idle ones, not a scrape in progress.
  server.on('timeout', (socket: Socket) => {
    if (!answering.has(socket)) socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS).unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

function error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  reply(res, status, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, JSON.stringify({ error: { code, message } }));
}

/** Writes the whole reply; one not taken by the client within `REPLY_TIMEOUT_MS` ends its connection. */
function reply(res: ServerResponse, status: number, headers: Record<string, string>, body: string | undefined): void {
  const cut = setTimeout(() => res.destroy(), REPLY_TIMEOUT_MS).unref();
  res.once('close', () => clearTimeout(cut)); // finished, or the connection ended
  res.writeHead(status, headers);
  res.end(body);
}
