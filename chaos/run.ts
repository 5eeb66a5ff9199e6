// The chaos suite: `npm run chaos -- <scenario> --broker redis|amqp|amqp+redis [--tasks N] [--fast]`.
// Runs one scenario against real `celeriac worker` processes, prints one JSON line
// {scenario, broker, enqueued, completed, lost, duplicate_effects, dead_lettered, unexpected, seconds, figures, failures}
// and exits 1 when a criterion failed (each failure is also written to stderr), 2 on a usage error.
import { parseArgs } from 'node:util';
import { BROKERS, Run, type BrokerKind, type Outcome, type ScenarioOptions } from './harness.js';
import { BEYOND_RABBITMQ_ALONE, SCENARIOS } from './scenarios/index.js';

const USAGE = `Usage: npm run chaos -- <scenario> --broker ${BROKERS.join('|')} [--tasks N] [--fast]

Scenarios: ${Object.keys(SCENARIOS).join(', ')}
--broker amqp+redis   RabbitMQ as broker with a Redis result store
--tasks N             tasks to run (each scenario has its own default; --fast uses a small one);
                      keys for idem-race, seconds for beat; block and partition ignore it
--fast                the small variant that npm test runs`;

export interface Report extends Omit<Outcome, 'figures' | 'failures'> {
  scenario: string;
  broker: BrokerKind;
  seconds: number;
  figures: Outcome['figures'];
  failures: string[];
}

/** Runs one scenario to its end (every scenario bounds its own waits) and cleans up after it. */
export async function runScenario(scenario: string, options: ScenarioOptions): Promise<Report> {
  const fn = SCENARIOS[scenario];
  if (!fn) throw new Error(`unknown scenario "${scenario}"\n\n${USAGE}`);
  const run = await new Run(scenario, options.broker).open();
  const started = Date.now();
  let outcome: Outcome;
  try {
    outcome = await fn(run, options);
  } finally {
    await run.close();
  }
  const { figures, failures, ...counts } = outcome;
  return { scenario, broker: options.broker, ...counts, seconds: Math.round((Date.now() - started) / 100) / 10, figures: { ...figures, ...(options.fast ? { fast: true } : {}), logs: run.logDir }, failures };
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { broker: { type: 'string' }, tasks: { type: 'string' }, fast: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const [scenario] = positionals;
  const broker = values.broker as BrokerKind | undefined;
  const tasks = values.tasks === undefined ? undefined : Number(values.tasks);
  const problem =
    scenario === undefined || !(scenario in SCENARIOS)
      ? `a scenario is required, one of: ${Object.keys(SCENARIOS).join(', ')} (got ${scenario ?? 'none'})`
      : broker === undefined || !BROKERS.includes(broker)
        ? `--broker must be ${BROKERS.join(', ')} (got ${broker ?? 'none'})`
        : broker === 'amqp' && scenario in BEYOND_RABBITMQ_ALONE
          ? `${scenario} does not apply to RabbitMQ alone: ${BEYOND_RABBITMQ_ALONE[scenario]}; run it with --broker amqp+redis (docs/reliability.md, "RabbitMQ alone")`
        : tasks !== undefined && (!Number.isInteger(tasks) || tasks < 1)
          ? `--tasks must be an integer ≥ 1 (got ${values.tasks})`
          : null;
  if (problem) {
    process.stderr.write(`chaos: ${problem}\n\n${USAGE}\n`);
    return 2;
  }
  const started = Date.now();
  const report = await runScenario(scenario!, { broker: broker!, tasks, fast: values.fast ?? false }).catch(
    (err: unknown): Report => ({
      scenario: scenario!,
      broker: broker!,
      enqueued: 0,
      completed: 0,
      lost: 0,
      duplicate_effects: 0,
      dead_lettered: 0,
      unexpected: 1,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      figures: {},
      failures: [`the scenario itself failed: ${(err as Error).stack ?? String(err)}`],
    }),
  );
  for (const f of report.failures) process.stderr.write(`chaos: ${scenario} on ${broker}: FAILED: ${f}\n`);
  process.stdout.write(JSON.stringify(report) + '\n');
  return report.failures.length > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main());
