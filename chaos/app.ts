// The app every chaos worker runs: `celeriac worker --app chaos/app.ts` (and `celeriac beat`).
// The runner configures it through the environment:
//   CELERIAC_BROKER_URL (--broker)  CHAOS_RESULTS_URL (optional result store)  CHAOS_QUEUE
//   CHAOS_LEDGER_URL  CHAOS_LEDGER_PREFIX  CHAOS_SCHEDULE (optional: a 1 s schedule of that name)
//   CHAOS_RSS_MS (optional: sample this process's RSS into the ledger that often)
import { Ledger } from './ledger.js';
import { chaosApp } from './tasks.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`chaos/app.ts: ${name} is not set (the chaos runner sets it)`);
  return value;
};

const ledger = new Ledger(env('CHAOS_LEDGER_URL'), env('CHAOS_LEDGER_PREFIX'));

export const { app } = chaosApp({
  broker: env('CELERIAC_BROKER_URL'),
  results: process.env.CHAOS_RESULTS_URL,
  queue: env('CHAOS_QUEUE'),
  ledger,
  schedule: process.env.CHAOS_SCHEDULE,
});

if (process.env.CHAOS_RSS_MS) {
  const every = Number(process.env.CHAOS_RSS_MS);
  setInterval(() => void ledger.sample(`rss:${process.pid}`, process.memoryUsage().rss), every).unref();
}
