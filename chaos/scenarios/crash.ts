import { missing, range, sleep, until, type Outcome, type Run, type ScenarioOptions } from '../harness.js';
import type { CeleriacProcess } from '../processes.js';

/**
 * Worker SIGKILL every 2 s: 4 workers, half the tasks plain, half keyed (one key each, and a
 * handler that keys its own effect by `ctx.idempotencyKey`); every 2 s a random worker is
 * SIGKILLed and a new one started, until every task is done (bounded).
 * Criteria: 0 lost (plain and keyed), exactly one effect per key, nothing dead-lettered.
 * Plain tasks may run twice (at-least-once): their repeats are reported, not failed.
 */
export async function kill(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const n = o.tasks ?? (o.fast ? 200 : 2_000);
  const leaseMs = 2_000;
  // `sturdy`: the work task with 10 attempts (see chaos/tasks.ts: each kill spends an attempt of
  // every task it interrupts; the criterion — nothing lost, nothing dead-lettered — is unchanged).
  const { sturdy: work } = run.producer();
  // Tasks of 500 ms on 16 (fast) or 40 slots: the run lasts long enough for several kills.
  const spec = { concurrency: o.fast ? 4 : 10, leaseMs };
  const live: CeleriacProcess[] = await run.startWorkers(4, spec);
  const keyed = (i: number) => i % 2 === 1;
  const started = Date.now();
  for (let from = 0; from < n; from += 500) {
    await work.enqueueMany(
      range(from, Math.min(n, from + 500)).map((i) =>
        keyed(i)
          ? { payload: { i, k: i, mode: 'keyed' as const, ms: 500 }, options: { id: `${run.id}-${i}`, idempotencyKey: `${run.id}-key-${i}` } }
          : { payload: { i, ms: 500 }, options: { id: `${run.id}-${i}` } },
      ),
    );
  }
  const bound = 60_000 + n * 30;
  let kills = 0;
  const finished = await until(
    async () => {
      if ((await run.ledger.doneCount()) >= n) return true;
      if (Date.now() - started >= kills * 2_000 + 2_000) {
        const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!;
        victim.kill('SIGKILL');
        kills++;
        live.push(run.startWorker(spec));
      }
      return false;
    },
    bound,
    100,
  );
  const seconds = (Date.now() - started) / 1000;
  await sleep(leaseMs + 1_000); // let redeliveries of the last killed runs finish
  const lost = await missing(run.ledger, range(0, n));
  const effects = await run.ledger.keyed();
  const keyedIdx = range(0, n).filter(keyed);
  const doubleKeyed = keyedIdx.reduce((sum, k) => sum + Math.max(0, (effects.get(k) ?? 0) - 1), 0);
  const noEffect = keyedIdx.filter((k) => (effects.get(k) ?? 0) === 0).length;
  const dead = (await run.deadLetters()).length;
  const plainRepeats = await run.ledger.duplicates();
  const failures: string[] = [];
  if (!finished) failures.push(`not all tasks completed within ${bound / 1000} s`);
  if (lost.length > 0) failures.push(`${lost.length} task(s) lost (e.g. ${lost.slice(0, 5).join(', ')})`);
  if (doubleKeyed > 0) failures.push(`${doubleKeyed} key(s) took effect more than once`);
  if (noEffect > 0) failures.push(`${noEffect} key(s) never took effect`);
  if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
  return {
    enqueued: n,
    completed: await run.ledger.doneCount(),
    lost: lost.length,
    duplicate_effects: doubleKeyed,
    dead_lettered: dead,
    unexpected: noEffect + dead,
    figures: { kills, repeated_runs_of_plain_or_keyed_tasks: plainRepeats, seconds_to_complete: seconds },
    failures,
  };
}

/**
 * Blocked event loop: 2 idle workers (concurrency 1, lease L = 1.5 s); one takes a task whose first run
 * holds its event loop for 4 L. The other must take it over within the bound (2 L + 1 s: a lease,
 * a renewal period, and scheduling slack), and the stale owner's late result must be rejected:
 * the waiter gets the new owner's value and it stays stored.
 */
export async function block(run: Run, o: ScenarioOptions): Promise<Outcome> {
  // One lease for both variants. 1.5 s: the bound (4 s) stays under Redis's default blocking fetch
  // (blockMs 5 s), so a worker that only notices an expired lease after blockMs fails; and it is
  // above RabbitMQ's floor (3 missed heartbeats of at least 1 s each: takeover ≤ 3 s).
  const leaseMs = 1_500;
  const blockMs = 4 * leaseMs;
  const boundMs = 2 * leaseMs + 1_000;
  const { app, work } = run.producer();
  await run.startWorkers(2, { concurrency: 1, leaseMs });
  const handle = await work.enqueue({ i: 0, mode: 'block', blockMs }, { id: `${run.id}-0` });
  const waited = handle.result({ timeoutMs: blockMs + 20_000 }).then(
    (v) => ({ value: v as { run: number; pid: number } }),
    (err: unknown) => ({ error: String(err) }),
  );
  const events = async () => run.ledger.events();
  const bothEnded = await until(async () => {
    const ev = await events();
    return ev.some((e) => e.run === 1 && e.phase === 'end') && ev.some((e) => e.run >= 2 && e.phase === 'end');
  }, blockMs + 8_000);
  await sleep(1_500); // the stale owner's settlement, if any, lands now
  const ev = await events();
  const first = ev.find((e) => e.run === 1 && e.phase === 'start');
  const second = ev.find((e) => e.run >= 2 && e.phase === 'start');
  const takeoverMs = first && second ? second.at - first.at : Infinity;
  const waiter = await waited;
  const { results } = await app.connection();
  const stored = await results.get(handle);
  const storedRun = stored?.state === 'succeeded' ? (stored.value as { run: number }).run : null;
  const failures: string[] = [];
  if (!second) failures.push(`no other worker took the task over while its owner's event loop was blocked (${blockMs} ms, lease ${leaseMs} ms)`);
  else if (takeoverMs > boundMs) failures.push(`takeover took ${takeoverMs} ms, over the bound of ${boundMs} ms (2 × leaseMs + 1 s)`);
  if (second && !bothEnded) failures.push('the blocked run and the takeover did not both end');
  if ('error' in waiter) failures.push(`result() failed: ${waiter.error}`);
  // Whose result counts is only a question once another worker took over.
  else if (second && waiter.value.run === 1) failures.push(`result() returned the stale owner's value (run 1, pid ${waiter.value.pid})`);
  if (second && storedRun === 1) failures.push("the stored result is the stale owner's (run 1)");
  if (storedRun === null) failures.push(`no succeeded result stored (got ${stored ? stored.state : 'nothing'})`);
  const dead = (await run.deadLetters()).length;
  const lost = (await missing(run.ledger, [0])).length;
  return {
    enqueued: 1,
    completed: await run.ledger.doneCount(),
    lost,
    duplicate_effects: 0,
    dead_lettered: dead,
    unexpected: failures.length,
    figures: { lease_ms: leaseMs, blocked_ms: blockMs, takeover_ms: Number.isFinite(takeoverMs) ? takeoverMs : 'never', takeover_bound_ms: boundMs, stored_run: storedRun ?? 'none', waiter_run: 'value' in waiter ? waiter.value.run : 'error' },
    failures,
  };
}

/**
 * Poison task: a task whose handler calls process.exit(1), among N normal ones, with 4 workers
 * that a supervisor (this runner) restarts when they die. First a baseline phase of N normal
 * tasks alone, then the poison plus N more. Criteria: the poison is dead-lettered after at most
 * maxAttempts (3) deliveries with a reason that says its deliveries kept dying, and the normal
 * tasks keep ≥ 90% of their baseline throughput.
 */
export async function poison(run: Run, o: ScenarioOptions): Promise<Outcome> {
  // Tasks of 200 ms on 40 slots: a phase lasts about n / 200 s (6 s fast, 30 s full), long against
  // what one death costs (a lease of 1 s for the tasks it took down, and a worker restart).
  // Fast: phases of about 15 s, long enough that three worker restarts (a second or two each on a
  // loaded machine) are not mistaken for starvation.
  const n = o.tasks ?? (o.fast ? 3_000 : 6_000);
  const leaseMs = 1_000;
  const { work } = run.producer();
  const spec = { concurrency: 10, leaseMs };
  const live: CeleriacProcess[] = await run.startWorkers(4, spec);
  let restarts = 0;
  let supervising = true;
  // The supervisor: a worker that dies is replaced, as systemd or Kubernetes would.
  const supervise = (async () => {
    while (supervising) {
      for (let w = 0; w < live.length; w++) {
        if (!live[w]!.alive && supervising) {
          live[w] = run.startWorker(spec);
          restarts++;
        }
      }
      await sleep(100);
    }
  })();
  const phase = async (from: number, withPoison: boolean) => {
    const t0 = Date.now();
    if (withPoison) await work.enqueue({ i: 2 * n, mode: 'exit' }, { id: `${run.id}-poison` });
    await work.enqueueMany(range(from, from + n).map((i) => ({ payload: { i, ms: 200 }, options: { id: `${run.id}-${i}` } })));
    const ok = await until(async () => (await missing(run.ledger, range(from, from + n))).length === 0, 30_000 + n * 20);
    return { ok, seconds: (Date.now() - t0) / 1000 };
  };
  const baseline = await phase(0, false);
  const poisoned = await phase(n, true);
  const deadOk = await until(async () => (await run.deadLetters()).some((d) => d.raw.includes(`${run.id}-poison`)), 15_000);
  supervising = false;
  await supervise;
  const dead = await run.deadLetters();
  const poisonDead = dead.find((d) => d.raw.includes(`${run.id}-poison`));
  const poisonRuns = await run.ledger.counter('poison-runs');
  const ratio = baseline.seconds / poisoned.seconds;
  const lost = await missing(run.ledger, range(0, 2 * n));
  const failures: string[] = [];
  if (!baseline.ok || !poisoned.ok) failures.push('normal tasks did not all complete in time');
  if (!deadOk || !poisonDead) failures.push(`the poison task was not dead-lettered (it ran ${poisonRuns} times)`);
  else if (!/die|died|dying|lapse|crash/i.test(poisonDead.reason)) failures.push(`the poison's dead-letter reason does not say its deliveries kept dying: "${poisonDead.reason}"`);
  if (poisonRuns > 3) failures.push(`the poison task ran ${poisonRuns} times; maxAttempts is 3`);
  if (!(ratio >= 0.9)) failures.push(`normal tasks kept ${(ratio * 100).toFixed(0)}% of their throughput (baseline ${baseline.seconds} s, with the poison ${poisoned.seconds} s); the bound is ≥ 90%`);
  if (lost.length > 0) failures.push(`${lost.length} normal task(s) lost`);
  const otherDead = dead.length - (poisonDead ? 1 : 0);
  if (otherDead > 0) failures.push(`${otherDead} normal task(s) dead-lettered`);
  return {
    enqueued: 2 * n + 1,
    completed: await run.ledger.doneCount(),
    lost: lost.length,
    duplicate_effects: 0,
    dead_lettered: dead.length,
    unexpected: otherDead,
    figures: { poison_runs: poisonRuns, worker_restarts: restarts, baseline_s: baseline.seconds, with_poison_s: poisoned.seconds, throughput_kept_pct: Math.round(ratio * 100), poison_reason: poisonDead?.reason ?? 'not dead-lettered' },
    failures,
  };
}
