// Turns chaos JSON lines (stdin) into the rows of the table in docs/reliability.md:
//   npm run chaos -- steady --broker redis >> runs.jsonl; …
//   node --import tsx chaos/table.ts < runs.jsonl
import { readFileSync } from 'node:fs';
import type { Report } from './run.js';
import { BEYOND_RABBITMQ_ALONE } from './scenarios/index.js';

const CRITERIA: Record<string, string> = {
  steady: '0 lost, 0 duplicates',
  kill: '0 lost; one effect per key',
  block: 'takeover ≤ 2 L + 1 s (L = 1.5 s); stale result rejected',
  'broker-restart': '0 lost confirmed; every enqueue settles ≤ 15 s',
  'broker-kill': '0 lost confirmed; every enqueue settles ≤ 15 s',
  resets: 'each task once',
  partition: 'no concurrent run of a key',
  poison: 'dead-lettered after ≤ 3 deliveries; others keep ≥ 90% throughput',
  badwire: 'each dead-lettered with a precise reason; nothing else lost',
  'idem-race': 'one task per key',
  memory: 'RSS after warm-up grows < 10%',
  beat: 'each tick once',
};

const KEY_FIGURES: Record<string, string[]> = {
  steady: ['tasks_per_second'],
  kill: ['kills'],
  block: ['takeover_ms', 'stored_run', 'waiter_run'],
  'broker-restart': ['confirmed', 'rejected', 'longest_settle_ms'],
  'broker-kill': ['confirmed', 'rejected', 'longest_settle_ms'],
  resets: ['connection_resets'],
  partition: ['concurrent_runs_of_a_key'],
  poison: ['poison_runs', 'throughput_kept_pct'],
  badwire: [],
  'idem-race': ['tasks_created'],
  memory: ['rss_growth_pct', 'tasks_per_second'],
  beat: ['window_s'],
};

const BROKER_COLUMNS = ['redis', 'amqp', 'amqp+redis'] as const;

function cell(r: Report | undefined): string {
  if (!r) return 'not run';
  const counts = `${r.completed.toLocaleString('en')}/${r.enqueued.toLocaleString('en')} done, ${r.lost} lost, ${r.duplicate_effects} dup, ${r.dead_lettered} dead`;
  const figures = (KEY_FIGURES[r.scenario] ?? []).map((k) => `${k} ${String(r.figures[k])}`).join(', ');
  const verdict = r.failures.length === 0 ? '**pass**' : `**FAIL**: ${r.failures.join('; ').replace(/\|/g, '\\|')}`;
  return `${verdict} — ${counts}${figures ? `; ${figures}` : ''}; ${r.seconds} s${r.figures.fast ? ' (--fast)' : ''}`;
}

const reports = readFileSync(0, 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as Report);
const latest = new Map<string, Report>();
for (const r of reports) latest.set(`${r.scenario}|${r.broker}`, r);
for (const scenario of Object.keys(CRITERIA)) {
  const cells = BROKER_COLUMNS.map((b) =>
    b === 'amqp' && scenario in BEYOND_RABBITMQ_ALONE ? 'n/a — beyond RabbitMQ alone (see "RabbitMQ alone")' : cell(latest.get(`${scenario}|${b}`)),
  );
  if (cells.every((c) => c === 'not run' || c.startsWith('n/a'))) continue;
  process.stdout.write(`| \`${scenario}\` | \`npm run chaos -- ${scenario} --broker <b>\` | ${CRITERIA[scenario]} | ${cells.join(' | ')} |\n`);
}
