import { constants } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CeleriacError, consoleLogger, type App, type LogLevel, type Logger } from '@celeriac/core';
import { loadApp } from './app-loader.js';
import { OPERATE_COMMANDS, OPERATE_HELP } from './cli/operate.js';
import { watchParent } from './parent-watch.js';
import { Scheduler } from './scheduler.js';
import { UsageError } from './usage-error.js';
import { Worker } from './worker.js';

export { loadApp } from './app-loader.js';

/**
 * How long a stop may still run after a second SIGTERM/SIGINT before the process exits anyway
 * (a third signal exits at once). The second signal has aborted the running tasks: this leaves
 * their release a moment to reach the broker. A stop that hangs (a broker cut off by a silent
 * partition, a handler that ignores its signal) then ends here, so no worker needs SIGKILL.
 */
export const FORCE_EXIT_MS = 3_000;

const MAIN_HELP = `celeriac — typed distributed task queue

Usage: celeriac <command> [options]

Commands:
  worker    run tasks from one or more queues
  beat      enqueue the app's periodic tasks (safe to run on every host)

${OPERATE_HELP}

Run \`celeriac <command> --help\` for a command's options.`;

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
  --log-level <level>     debug | info | warn | error | silent (default info)
  -h, --help              show this help

SIGTERM or SIGINT stops gracefully; a second signal stops at once, returning unfinished tasks to the queue,
and exits (code 128 + signal number) if that stop has not finished ${FORCE_EXIT_MS / 1000} s later; a third exits at once.
Under a process manager or in a container, run node_modules/.bin/celeriac itself, not npx or npm run:
npm does not pass signals on (the command notices when npm exits and stops gracefully then).`;

const BEAT_HELP = `Usage: celeriac beat --app <module> [options]

Enqueues the periodic tasks declared with app.schedule(...) in <module>'s exported \`app\`.
Run it on as many hosts as you like: each tick is enqueued once (its idempotency key is derived
from the schedule name and tick time), and last-run times live in the broker's store.

Options:
  --app <path>            module exporting \`app\` (required); a .ts file needs tsx installed
  --broker <url>          broker URL; sets CELERIAC_BROKER_URL before the module loads
  --log-level <level>     debug | info | warn | error | silent (default info)
  -h, --help              show this help

SIGTERM or SIGINT stops; a second signal exits (code 128 + signal number) if the stop has not
finished ${FORCE_EXIT_MS / 1000} s later; a third exits at once.`;

const beatArgs = {
  app: { type: 'string' },
  broker: { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

const workerArgs = {
  beat: { type: 'boolean' },
  app: { type: 'string' },
  broker: { type: 'string' },
  queues: { type: 'string' },
  concurrency: { type: 'string' },
  'lease-ms': { type: 'string' },
  'grace-ms': { type: 'string' },
  'log-level': { type: 'string', default: 'info' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** Asks a yes/no question on the terminal (stderr, so stdout stays the command's output). */
async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** Runs the command; resolves with the process exit code. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(MAIN_HELP);
      return command === undefined ? 1 : 0;
    }
    if (command === 'worker') return await workerCommand(rest, out);
    if (command === 'beat') return await beatCommand(rest, out);
    const operate = Object.hasOwn(OPERATE_COMMANDS, command) ? OPERATE_COMMANDS[command] : undefined;
    if (operate) return await operate(rest, { out, err: (s) => process.stderr.write(s + '\n'), ...(process.stdin.isTTY && process.stderr.isTTY ? { confirm: askOnTerminal } : {}) });
    throw new UsageError(`unknown command "${command}"\n\n${MAIN_HELP}`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof CeleriacError) {
      process.stderr.write(`celeriac: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function workerCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const values = commandArgs(parse(argv, workerArgs).values, WORKER_HELP, out);
  if (!values) return 0;
  const level = logLevel(values['log-level']);
  const options = {
    beat: values.beat ?? false,
    ...(values.queues ? { queues: values.queues.split(',').map((q) => q.trim()).filter(Boolean) } : {}),
    ...(values.concurrency ? { concurrency: int('--concurrency', values.concurrency) } : {}),
    ...(values['lease-ms'] ? { leaseMs: int('--lease-ms', values['lease-ms']) } : {}),
    ...(values['grace-ms'] ? { shutdownGraceMs: int('--grace-ms', values['grace-ms'], 0) } : {}),
    handleSignals: true,
    logger: consoleLogger(level),
  };
  const app = await openApp(values);
  const worker = new Worker(app, options);
  const stopped = new Promise<void>((resolve) => worker.once('worker:stopped', resolve));
  await worker.start();
  const unforce = forceExitOnSecondSignal(options.logger);
  const unwatch = watchParent(options.logger);
  try {
    await stopped;
    unwatch();
    await app.close();
  } finally {
    unforce();
  }
  return 0;
}

async function beatCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const values = commandArgs(parse(argv, beatArgs).values, BEAT_HELP, out);
  if (!values) return 0;
  const logger = consoleLogger(logLevel(values['log-level']));
  const app = await openApp(values);
  if (app.schedules.size === 0) throw new UsageError(`--app ${values.app}: the app declares no schedules; add app.schedule('name', { cron, task, payload })`);
  const scheduler = new Scheduler(app, { logger });
  // Listen before the first line is logged: a SIGTERM sent by whoever watches the log for that
  // line must stop the scheduler, not kill it (the default action until a listener exists).
  const signalled = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping scheduler');
      resolve();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  const unforce = forceExitOnSecondSignal(logger);
  try {
    await scheduler.start();
    const unwatch = watchParent(logger);
    for (const s of scheduler.describe()) logger.info({ schedule: s.name, expression: s.expression, tz: s.tz, nextRun: new Date(s.nextRun).toISOString() }, 'schedule');
    await signalled;
    unwatch();
    await scheduler.stop();
    await app.close();
  } finally {
    unforce();
  }
  logger.info('scheduler stopped');
  return 0;
}

/**
 * Counts SIGTERM/SIGINT while the command runs: the second ends the process FORCE_EXIT_MS later
 * unless the command has returned by then, the third at once (exit code 128 + signal number, as
 * for a process the signal killed). Listening also keeps a signal that arrives once the worker's
 * own handlers are gone (during the final close) from killing the process mid-close. Returns the
 * function that stops listening.
 */
function forceExitOnSecondSignal(logger: Logger): () => void {
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  const exit = (signal: NodeJS.Signals) => process.exit(128 + (constants.signals[signal] ?? 15));
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count === 2) {
      timer = setTimeout(() => {
        logger.error({ signal, afterMs: FORCE_EXIT_MS }, 'the stop did not finish after a second signal; exiting now (tasks not given back return after their lease)');
        exit(signal);
      }, FORCE_EXIT_MS);
    } else if (count > 2) {
      logger.error({ signal }, 'third signal; exiting now (tasks not given back return after their lease)');
      exit(signal);
    }
  };
  process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  return () => {
    clearTimeout(timer);
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
  };
}

/** Parses a command's flags and checks `--app`; undefined when it printed its help instead. */
function commandArgs<V extends { help?: boolean | undefined; app?: string | undefined }>(values: V, help: string, out: (s: string) => void) {
  if (values.help) {
    out(help);
    return undefined;
  }
  if (!values.app) throw new UsageError(`--app is required\n\n${help}`);
  return { ...values, app: values.app };
}

/** Loads the user's app; `--broker` goes into the environment first, where the app reads it. */
function openApp(values: { app: string; broker?: string | undefined }): Promise<App> {
  if (values.broker) process.env.CELERIAC_BROKER_URL = values.broker;
  return loadApp(values.app);
}

function logLevel(value: string | undefined): LogLevel {
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(value ?? '')) throw new UsageError(`--log-level must be debug, info, warn, error or silent (got ${value})`);
  return value as LogLevel;
}

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function int(flag: string, value: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min} (got ${value})`);
  return n;
}
