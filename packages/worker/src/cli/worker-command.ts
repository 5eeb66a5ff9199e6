import { assertBindable } from '../http-access.js';
import { workerMetrics } from '../metrics.js';
import { METRICS_TOKEN_NAMES, serveMetrics, type MetricsServer } from '../metrics-server.js';
import { UsageError } from '../usage-error.js';
import { watchParent } from '../parent-watch.js';
import { Worker } from '../worker.js';
import { COMMON_ARGS, LOG_HELP, commandArgs, commandLogger, int, openApp, parse, type Command, type Out } from './args.js';
import { logBanner, warnIfInProcess } from './banner.js';
import { FORCE_EXIT_MS, forceExitOnSecondSignal } from './signals.js';
import { logTaskLines } from './task-lines.js';

const WORKER_HELP = `Usage: celeriac worker --app <module> [options]

Runs the tasks registered in <module>'s exported \`app\` (export const app = createApp(...)).

Options:
  --app <path>            module exporting \`app\` (required): ./dist/app.js, or ./src/app.ts
                          when tsx is installed (npm install --save-dev tsx)
  --broker <url>          broker URL; sets CELERIAC_BROKER_URL before the module loads
  --queues <a,b>          queues to consume (default: every queue the app's tasks use)
  --concurrency <n>       tasks run at once (default 10)
  --lease-ms <ms>         lease per task, renewed while it runs (default 30000)
  --grace-ms <ms>         how long a stop waits for running tasks (default 30000)
  --beat                  also run the scheduler for the app's periodic tasks
  --metrics-port <n>      serve Prometheus metrics at http://<host>:<n>/metrics (0: any free port)
  --metrics-host <host>   address for --metrics-port (default 127.0.0.1); any other address
                          needs a token: CELERIAC_METRICS_TOKEN=<t> (or --metrics-token)
  --metrics-token <t>     require Authorization: Bearer <t> on /metrics; prefer the variable
                          CELERIAC_METRICS_TOKEN (a flag is visible to anyone running ps)
${LOG_HELP}
  -h, --help              show this help

At info it logs a line per task outcome (name[id], outcome, duration, attempt); ctx.log in a
handler writes to the same log, with the task's id, name and attempt.

SIGTERM or SIGINT stops gracefully; a second signal stops at once, returning unfinished tasks to the queue,
and exits (code 128 + signal number) if that stop has not finished ${FORCE_EXIT_MS / 1000} s later; a third exits at once.
Under a process manager or in a container, run node_modules/.bin/celeriac itself, not npx or npm run:
npm does not pass signals on (the command notices when npm exits and stops gracefully then).`;

const WORKER_ARGS = {
  ...COMMON_ARGS,
  beat: { type: 'boolean' },
  queues: { type: 'string' },
  concurrency: { type: 'string' },
  'lease-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'metrics-token': { type: 'string' },
} as const;

export const workerCommand: Command = {
  summary: 'run tasks from one or more queues',
  run,
};

async function run(argv: string[], out: Out): Promise<number> {
  const values = commandArgs(parse(argv, WORKER_ARGS).values, WORKER_HELP, out);
  if (!values) return 0;
  const { logger, format } = commandLogger(values);
  const options = {
    beat: values.beat ?? false,
    ...(values.queues ? { queues: values.queues.split(',').map((q) => q.trim()).filter(Boolean) } : {}),
    ...(values.concurrency ? { concurrency: int('--concurrency', values.concurrency) } : {}),
    ...(values['lease-ms'] ? { leaseMs: int('--lease-ms', values['lease-ms']) } : {}),
    ...(values['grace-ms'] ? { shutdownGraceMs: int('--grace-ms', values['grace-ms'], 0) } : {}),
    handleSignals: true,
    // The worker's logger, not the app's: an app created without one still logs here, ctx.log included.
    logger,
  };
  const metrics = metricsArgs(values); // before the app loads: a refused address costs nothing
  const app = await openApp(values);
  const worker = new Worker(app, options);
  logTaskLines(worker, logger, format);
  const stopped = new Promise<void>((resolve) => worker.once('worker:stopped', resolve));
  const conn = await app.connection(); // the worker's own (shared): the banner says what it connected to
  let server: MetricsServer | undefined;
  if (metrics) {
    const { registry } = await workerMetrics(worker, app, undefined, { logger });
    server = await serveMetrics(registry, metrics).catch(async (err: unknown) => {
      await app.close();
      const fix = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (another process uses the port): choose another --metrics-port, or 0 for a free one' : '';
      throw new UsageError(`--metrics-port ${metrics.port}: cannot listen on ${metrics.host}: ${(err as Error).message}${fix}`);
    });
  }
  logBanner(logger, format, app, conn, worker, server?.url);
  const unforce = forceExitOnSecondSignal(logger); // before the start: a second signal during it still ends the process
  try {
    await worker.start();
    warnIfInProcess(logger, conn);
    const unwatch = watchParent(logger);
    await stopped;
    unwatch();
    await app.close();
  } finally {
    await server?.close();
    unforce();
  }
  return 0;
}

/** `--metrics-*`: where to serve the metrics, refused (exit 2) for an address other than loopback without a token. */
function metricsArgs(values: { 'metrics-port'?: string | undefined; 'metrics-host'?: string | undefined; 'metrics-token'?: string | undefined }) {
  const token = values['metrics-token'] ?? process.env[METRICS_TOKEN_NAMES.env];
  const host = values['metrics-host'] ?? '127.0.0.1';
  if (values['metrics-port'] === undefined) {
    if (values['metrics-host'] !== undefined || values['metrics-token'] !== undefined) throw new UsageError('--metrics-host and --metrics-token need --metrics-port <n>');
    return undefined;
  }
  const port = int('--metrics-port', values['metrics-port'], 0);
  if (port > 65_535) throw new UsageError(`--metrics-port must be a port number, 0 to 65535 (got ${port})`);
  assertBindable(host, token, METRICS_TOKEN_NAMES, (m) => new UsageError(m));
  return { host, port, token };
}
