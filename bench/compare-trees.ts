// celeriac against an older copy of itself, in one run: did a change cost throughput?
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci)
//   npx tsx bench/compare-trees.ts /tmp/before          (BENCH_ROUNDS=5 BENCH_N=20000 BENCH_C=50)
//
// Each round runs one round of bench/redis-throughput.ts in each tree, in alternating order, on the
// same Redis, and keeps the figures of every system it prints (BullMQ's show how noisy the machine
// was: the same code in both trees). Prints one JSON line per tree and round, then the medians
// and the after/before ratios of celeriac's processing and bulk enqueue.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [beforeDir] = process.argv.slice(2);
if (!beforeDir) {
  process.stderr.write('usage: npx tsx bench/compare-trees.ts <path of the older checkout>\n');
  process.exit(2);
}
const trees = { before: resolve(beforeDir), after: resolve(fileURLToPath(new URL('..', import.meta.url))) };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

type Figures = Record<string, { processPerSec: number; bulkEnqueuePerSec: number }>;

/** One round of the throughput bench in `dir`; the per-system figures it printed. */
function oneRound(dir: string): Promise<Figures> {
  const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', 'bench/redis-throughput.ts'], {
    cwd: dir,
    env: { ...process.env, BENCH_ROUNDS: '1', BENCH_LATENCY_S: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((done, fail) =>
    child.on('close', (code) => {
      if (code !== 0) return fail(new Error(`bench in ${dir} exited with ${code}`));
      const figures: Figures = {};
      for (const line of out.split('\n').filter(Boolean)) {
        const row = JSON.parse(line) as { bench: string; system?: string; processPerSec?: number; bulkEnqueuePerSec?: number };
        if (row.bench === 'redis-throughput' && row.system) figures[row.system] = { processPerSec: row.processPerSec!, bulkEnqueuePerSec: row.bulkEnqueuePerSec! };
      }
      done(figures);
    }),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rounds: Record<keyof typeof trees, Figures[]> = { before: [], after: [] };
for (let round = 1; round <= ROUNDS; round++) {
  const order = (round % 2 === 1 ? ['before', 'after'] : ['after', 'before']) as (keyof typeof trees)[];
  for (const tree of order) {
    const figures = await oneRound(trees[tree]);
    rounds[tree].push(figures);
    process.stdout.write(JSON.stringify({ bench: 'compare-trees', tree, round, figures }) + '\n');
  }
}
const med = (tree: keyof typeof trees, system: string, key: 'processPerSec' | 'bulkEnqueuePerSec') => median(rounds[tree].map((f) => f[system]![key]));
const summary = Object.fromEntries(
  (['celeriac', 'bullmq'] as const).map((system) => [
    system,
    Object.fromEntries((['processPerSec', 'bulkEnqueuePerSec'] as const).map((k) => [k, { before: med('before', system, k), after: med('after', system, k), ratio: +(med('after', system, k) / med('before', system, k)).toFixed(3) }])),
  ]),
);
process.stdout.write(JSON.stringify({ bench: 'compare-trees-summary', rounds: ROUNDS, trees, medians: summary }) + '\n');
