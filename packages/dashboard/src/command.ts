import { withTimeout } from '@celeriac/core';
import { COMMON_ARGS, LOG_HELP, OPERATE_TIMEOUT_MS, UnreachableError, UsageError, commandLogger, forceExitOnSecondSignal, int, openApp, parse, watchParent, type Command, type Out } from '@celeriac/worker/cli';
import { listenUrls, serveDashboard } from './server.js';

const HELP = `Usage: celeriac dashboard --broker <url> [options]

Serves the dashboard: live pages of queues, tasks, workers and schedules, with actions, its JSON
API under /api and Prometheus metrics at /metrics. Prints its URL (on 0.0.0.0 or ::, one per
address of this machine, loopback first); opens no browser.

Options:
  --broker <url>          broker URL (default: $CELERIAC_BROKER_URL)
  --results <url>         result store URL when apart from the broker, e.g. redis:// beside amqp://
                          (default: $CELERIAC_RESULTS_URL); without one, RabbitMQ shows counts and dead letters only
  --app <path>            or: the module exporting your \`app\` (uses its broker and store); not needed
  --host <address>        address to listen on (default 127.0.0.1); any other needs a token
  --port <n>              port (default 5555; 0 picks a free one)
  --token <secret>        require Authorization: Bearer <secret> on /api and /metrics (the page asks
                          for it once) (default: $CELERIAC_DASHBOARD_TOKEN; prefer the variable:
                          other users of this machine can read a flag in ps). Off loopback it
                          travels in clear over HTTP: put TLS in front
  --queues <a,b>          queues always listed (on RabbitMQ without a Redis store, the only ones listed)
${LOG_HELP}
  -h, --help              show this help

SIGTERM or SIGINT stops it.`;

const ARGS = {
  ...COMMON_ARGS,
  results: { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '5555' },
  token: { type: 'string' },
  queues: { type: 'string' },
} as const;

/** `celeriac dashboard`, run by the celeriac command when this package is installed. */
export const dashboardCommand: Command = {
  summary: 'serve the web dashboard, its JSON API and /metrics (@celeriac/dashboard)',
  run,
};

async function run(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, ARGS);
  if (values.help) {
    out(HELP);
    return 0;
  }
  const { logger } = commandLogger(values);
  const port = int('--port', values.port, 0);
  const token = values.token || process.env.CELERIAC_DASHBOARD_TOKEN || undefined;
  const queues = values.queues?.split(',').map((q) => q.trim()).filter(Boolean) ?? [];
  const brokerUrl = values.broker ?? process.env.CELERIAC_BROKER_URL;
  const resultsUrl = values.results ?? process.env.CELERIAC_RESULTS_URL;
  // Listen before anything slow: a signal sent as soon as the URL is printed must stop, not kill.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const unforce = forceExitOnSecondSignal(logger);
  const app = await openApp(values);
  try {
    await withTimeout(app.connection(), OPERATE_TIMEOUT_MS, () => new UnreachableError(values, OPERATE_TIMEOUT_MS));
    const served = await serveDashboard(app, {
      host: values.host,
      port,
      queues,
      ...(token ? { token } : {}),
      ...(brokerUrl ? { brokerUrl } : {}),
      ...(resultsUrl ? { resultsUrl } : {}),
    }).catch((err: unknown) => {
      const code = (err as { code?: string }).code;
      if (code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${values.host} is in use: pick another with --port`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`cannot listen on ${values.host}: no such address on this machine (--host)`);
      throw err;
    });
    for (const url of listenUrls(values.host, Number(new URL(served.url).port))) out(url);
    logger.info({ url: served.url, token: token ? 'required' : 'none' }, `celeriac dashboard on ${served.url}`);
    const unwatch = watchParent(logger);
    const signal = await signalled;
    unwatch();
    logger.info({ signal }, 'stopping dashboard');
    await served.close();
    return 0;
  } finally {
    unforce();
    await withTimeout(app.close(), 2_000, () => new Error('close timed out')).catch(() => {});
  }
}
