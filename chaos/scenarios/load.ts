import { missing, range, sleep, until, type Outcome, type Run, type ScenarioOptions } from '../harness.js';

const BATCH = 1_000;

/**
 * Steady load: N tasks (default 100,000) through 4 workers at concurrency 50, results kept.
 * Criteria: 0 lost, 0 duplicate effects, nothing dead-lettered.
 */
export async function steady(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const n = o.tasks ?? (o.fast ? 2_000 : 100_000);
  const { work } = run.producer();
  await run.startWorkers(4, { concurrency: 50, leaseMs: 30_000 });
  const started = Date.now();
  for (let from = 0; from < n; from += BATCH) {
    await work.enqueueMany(range(from, Math.min(n, from + BATCH)).map((i) => ({ payload: { i }, options: { id: `${run.id}-${i}` } })));
  }
  const enqueuedS = (Date.now() - started) / 1000;
  const finished = await until(async () => (await run.ledger.doneCount()) >= n, 30_000 + n * 5);
  const seconds = (Date.now() - started) / 1000;
  await sleep(1_000); // late duplicates would land now
  const lost = (await missing(run.ledger, range(0, n))).length;
  const dead = (await run.deadLetters()).length;
  const duplicates = await run.ledger.duplicates();
  const failures: string[] = [];
  if (!finished) failures.push(`not all tasks completed within ${(30_000 + n * 5) / 1000} s`);
  if (lost > 0) failures.push(`${lost} task(s) lost`);
  if (duplicates > 0) failures.push(`${duplicates} duplicate effect(s)`);
  if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
  return {
    enqueued: n,
    completed: await run.ledger.doneCount(),
    lost,
    duplicate_effects: duplicates,
    dead_lettered: dead,
    unexpected: dead,
    figures: { enqueue_seconds: enqueuedS, tasks_per_second: Math.round(n / seconds) },
    failures,
  };
}

/**
 * Memory: N tasks (default 1,000,000) through one worker, backlog kept under 20,000 by the
 * producer; the worker samples its RSS every 250 ms into the ledger.
 * Criterion: RSS at the end is less than 10% above RSS after warm-up. Warm-up is the first 10% of
 * the tasks (at least 20,000); RSS saws with garbage collection, so each end is the median of the
 * samples in a quarter of the time after warm-up (the first quarter, the last quarter).
 */
export async function memory(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const n = o.tasks ?? (o.fast ? 80_000 : 1_000_000);
  // A short run spends its first tens of thousands of tasks growing the heap to its working size
  // (the full run's RSS is flat after that): the fast variant warms up over its first half.
  const warmTasks = o.fast ? n / 2 : Math.min(n / 2, Math.max(n / 10, 20_000));
  // Ids acked without a result are remembered for publish dedup; keep that short so Redis holds less.
  run.redisExtra = '&tombstoneMs=60000';
  const { light } = run.producer();
  const [worker] = await run.startWorkers(1, { concurrency: 50, leaseMs: 30_000, env: { CHAOS_RSS_MS: '250' } });
  const started = Date.now();
  let enqueued = 0;
  let warmAt = 0;
  const deadline = started + 60_000 + n * 2;
  while (Date.now() < deadline) {
    const done = await run.ledger.doneCount();
    if (!warmAt && done >= warmTasks) warmAt = Date.now();
    if (done >= n) break;
    if (enqueued < n && enqueued - done < 20_000) {
      const to = Math.min(n, enqueued + 2_000);
      await light.enqueueMany(range(enqueued, to).map((i) => ({ payload: { i }, options: { id: `${run.id}-${i}` } })));
      enqueued = to;
    } else {
      await sleep(100);
    }
  }
  const finishedAt = Date.now();
  const seconds = (finishedAt - started) / 1000;
  await sleep(1_200);
  const samples = await run.ledger.samples(`rss:${worker!.pid}`);
  if (process.env.CHAOS_DEBUG) process.stderr.write(samples.map((s) => `${s.at - started} ${mb(s.value)}`).join("\n") + `\nwarm at ${warmAt - started}\n`);
  const after = samples.filter((s) => s.at >= warmAt && s.at <= finishedAt);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const quarter = Math.max(1, Math.floor(after.length / 4));
  const warm = median(after.slice(0, quarter).map((s) => s.value));
  const end = median(after.slice(-quarter).map((s) => s.value));
  const growth = (end - warm) / warm;
  const lost = (await missing(run.ledger, range(0, enqueued))).length;
  const duplicates = await run.ledger.duplicates();
  const dead = (await run.deadLetters()).length;
  const failures: string[] = [];
  if (enqueued < n || lost > 0) failures.push(`${n - enqueued + lost} of ${n} task(s) not completed within ${(deadline - started) / 1000} s`);
  if (!(growth < 0.1)) failures.push(`RSS grew ${(growth * 100).toFixed(1)}% after warm-up (${mb(warm)} → ${mb(end)} MB); the bound is 10%`);
  if (duplicates > 0) failures.push(`${duplicates} duplicate effect(s)`);
  if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
  return {
    enqueued,
    completed: await run.ledger.doneCount(),
    lost,
    duplicate_effects: duplicates,
    dead_lettered: dead,
    unexpected: dead,
    figures: { rss_warm_mb: mb(warm), rss_end_mb: mb(end), rss_growth_pct: Number((growth * 100).toFixed(1)), tasks_per_second: Math.round(n / seconds), rss_samples: samples.length },
    failures,
  };
}

const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
