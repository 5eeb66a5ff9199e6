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
  const app = await openApp(values);
  const worker = new Worker(app, options);
  logTaskLines(worker, logger, format);
  const stopped = new Promise<void>((resolve) => worker.once('worker:stopped', resolve));
  const conn = await app.connection(); // the worker's own (shared): the banner says what it connected to
  logBanner(logger, format, app, conn, worker);
  const unforce = forceExitOnSecondSignal(logger); // before the start: a second signal during it still ends the process
  try {
    await worker.start();
    warnIfInProcess(logger, conn);
    const unwatch = watchParent(logger);
    await stopped;
    unwatch();
    await app.close();
  } finally {
    unforce();
  }
  return 0;
}
