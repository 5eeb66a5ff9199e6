import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ValidationError, type App } from '@celeriac/core';
import { assertBindable } from '@celeriac/worker';
import { createDashboard } from './dashboard.js';
import { parseServeOptions, type ServeOptions } from './options.js';

export interface ServedDashboard {
  /** Where to open it, e.g. `http://127.0.0.1:5555/` (the port picked when 0 was asked); on a wildcard host (0.0.0.0, ::), the loopback URL (`listenUrls` gives the others). */
  url: string;
  /** Stops listening (open pages are disconnected) and stops the sampler; the app stays open. */
  close(): Promise<void>;
}

/**
 * The dashboard on a server of its own (`celeriac dashboard` uses this). Listens on 127.0.0.1 by
 * default; any other address needs a token (`--token` / CELERIAC_DASHBOARD_TOKEN), or it refuses
 * to start.
 */
export async function serveDashboard(app: App, options: ServeOptions = {}): Promise<ServedDashboard> {
  const { host, port } = parseServeOptions(options);
  assertBindable(host, options.token, { flag: '--token', env: 'CELERIAC_DASHBOARD_TOKEN' }, (message) => new ValidationError('INVALID_OPTIONS', message));
  const { host: _host, port: _port, ...rest } = options;
  // No need to allow `host` itself: a loopback one passes as loopback, and any other needs the token (then no host list applies).
  const dashboard = createDashboard(app, rest);
  const server = createServer(dashboard.handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await dashboard.close();
    throw err;
  }
  return {
    url: listenUrls(host, (server.address() as AddressInfo).port)[0]!,
    close: async () => {
      await dashboard.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The URLs a browser can use for `host:port`: a wildcard address is no place to go, so loopback first, then each interface's address. */
export function listenUrls(host: string, port: number): string[] {
  const url = (h: string) => `http://${h.includes(':') ? `[${h}]` : h}:${port}/`;
  const v6 = host === '::' || host === '[::]';
  if (host !== '0.0.0.0' && !v6) return [url(host)];
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && (v6 || a.family === 'IPv4') && !a.address.startsWith('fe80:'))
    .map((a) => a!.address);
  return [url(v6 ? '::1' : '127.0.0.1'), ...addresses.map(url)];
}
