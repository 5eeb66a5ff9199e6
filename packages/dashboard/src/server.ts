import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError, type App } from '@celeriac/core';
import { assertBindable } from '@celeriac/worker';
import { createDashboard } from './dashboard.js';
import { parseServeOptions, type ServeOptions } from './options.js';

export interface ServedDashboard {
  /** Where it listens, e.g. `http://127.0.0.1:5555/` (the port picked when 0 was asked). */
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
  const dashboard = createDashboard(app, { ...rest, allowedHosts: [...(rest.allowedHosts ?? []), host] });
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
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    close: async () => {
      await dashboard.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
