import { Scheduler } from '../scheduler.js';
import { UsageError } from '../usage-error.js';
import { watchParent } from '../parent-watch.js';
import { COMMON_ARGS, LOG_HELP, commandArgs, commandLogger, openApp, parse, type Command, type Out } from './args.js';
import { FORCE_EXIT_MS, forceExitOnSecondSignal } from './signals.js';

const BEAT_HELP = `Usage: celeriac beat --app <module> [options]

Enqueues the periodic tasks declared with app.schedule(...) in <module>'s exported \`app\`.
Run it on as many hosts as you like: each tick is enqueued once (its idempotency key is derived
from the schedule name and tick time), and last-run times live in the broker's store.

Options:
  --app <path>            module exporting \`app\` (required); a .ts file needs tsx installed
  --broker <url>          broker URL; sets CELERIAC_BROKER_URL before the module loads
${LOG_HELP}
  -h, --help              show this help

SIGTERM or SIGINT stops; a second signal exits (code 128 + signal number) if the stop has not
finished ${FORCE_EXIT_MS / 1000} s later; a third exits at once.`;

export const beatCommand: Command = {
  summary: "enqueue the app's periodic tasks (safe to run on every host)",
  run,
};

async function run(argv: string[], out: Out): Promise<number> {
  const values = commandArgs(parse(argv, COMMON_ARGS).values, BEAT_HELP, out);
  if (!values) return 0;
  const { logger } = commandLogger(values);
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
