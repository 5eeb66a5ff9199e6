import { missing, range, sleep, SHARED_AMQP_PORT, SHARED_REDIS_PORT, until, type Outcome, type Run, type ScenarioOptions } from '../harness.js';
import { FaultProxy } from '../../test/support/fault-proxy.js';

/** Proxies for everything a worker talks to: the broker, and the Redis result store when RabbitMQ is paired with one. */
async function proxiesFor(run: Run): Promise<{ broker: FaultProxy; results: FaultProxy | null; all: FaultProxy[] }> {
  const broker = await new FaultProxy(run.kind === 'redis' ? SHARED_REDIS_PORT : SHARED_AMQP_PORT).start();
  const results = run.kind === 'amqp+redis' ? await new FaultProxy(SHARED_REDIS_PORT).start() : null;
  return { broker, results, all: results ? [broker, results] : [broker] };
}

/**
 * Connection resets: 2 workers reach the broker (and store) through a proxy that cuts every
 * connection with a TCP RST every 700 ms, until the tasks are done (bounded). The producer
 * enqueues directly. Criterion: each task once — 0 lost, 0 duplicate effects.
 */
export async function resets(run: Run, o: ScenarioOptions): Promise<Outcome> {
  // Tasks of 100 ms on 10 slots: at least n / 100 s (2 s fast, 40 s full), a reset every 700 ms.
  const n = o.tasks ?? (o.fast ? 200 : 4_000);
  const proxy = await proxiesFor(run);
  try {
    const { work } = run.producer();
    const via = { brokerPort: proxy.broker.port, ...(proxy.results ? { resultsPort: proxy.results.port } : {}) };
    await run.startWorkers(2, { concurrency: 5, leaseMs: 5_000, ...via });
    const started = Date.now();
    await work.enqueueMany(range(0, n).map((i) => ({ payload: { i, ms: 100 }, options: { id: `${run.id}-${i}` } })));
    const bound = 60_000 + n * 30;
    let lastReset = Date.now();
    const finished = await until(
      async () => {
        if ((await run.ledger.doneCount()) >= n) return true;
        if (Date.now() - lastReset >= 700) {
          for (const p of proxy.all) p.reset();
          lastReset = Date.now();
        }
        return false;
      },
      bound,
      100,
    );
    const seconds = (Date.now() - started) / 1000;
    await sleep(2_000);
    const lost = await missing(run.ledger, range(0, n));
    const duplicates = await run.ledger.duplicates();
    const dead = (await run.deadLetters()).length;
    const resetCount = proxy.all.reduce((sum, p) => sum + p.resets, 0);
    const failures: string[] = [];
    if (resetCount === 0) failures.push('the tasks finished before any connection was reset; run more (--tasks)');
    if (lost.length > 0) failures.push(`${lost.length} task(s) never ran (e.g. ${lost.slice(0, 5).join(', ')}) within ${bound / 1000} s`);
    if (duplicates > 0) failures.push(`${duplicates} task(s) ran more than once`);
    if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
    return {
      enqueued: n,
      completed: await run.ledger.doneCount(),
      lost: lost.length,
      duplicate_effects: duplicates,
      dead_lettered: dead,
      unexpected: dead,
      figures: { connection_resets: resetCount, seconds_to_complete: seconds, completed_within_bound: finished },
      failures,
    };
  } finally {
    await run.close();
    for (const p of proxy.all) await p.close();
  }
}

/**
 * Silent partition: worker A reaches the broker (and store) through a proxy. Each round, A takes
 * 3 keyed tasks whose runs last 6 leases; then A's proxy stops forwarding (nothing is closed) and
 * an idle worker B, connected directly, starts. The partition lasts until B has started all 3
 * keys or 8 leases have passed, then heals; B is stopped at the end of the round. One round
 * fast, three full.
 * Criterion: no two runs of one key at the same time (A must give up a run it cannot renew
 * before B may take it over); also 0 lost and exactly one effect per key.
 */
export async function partition(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const rounds = o.fast ? 1 : 3;
  const perRound = 3;
  const n = rounds * perRound;
  const leaseMs = o.fast ? 1_000 : 2_000;
  const proxy = await proxiesFor(run);
  try {
    const { work } = run.producer();
    const via = { brokerPort: proxy.broker.port, ...(proxy.results ? { resultsPort: proxy.results.port } : {}) };
    const [a] = await run.startWorkers(1, { concurrency: perRound, leaseMs, ...via });
    const started = Date.now();
    let partitions = 0;
    let partitionMs = 0;
    const startsBy = async (pid: number, keys: number[]) => {
      const ev = await run.ledger.events();
      return keys.every((k) => ev.some((e) => e.i === k && e.pid === pid && e.phase === 'start'));
    };
    for (let r = 0; r < rounds; r++) {
      const keys = range(r * perRound, (r + 1) * perRound);
      await work.enqueueMany(keys.map((i) => ({ payload: { i, k: i, mode: 'keyed' as const, ms: 6 * leaseMs }, options: { id: `${run.id}-${i}`, idempotencyKey: `${run.id}-key-${i}` } })));
      if (!(await until(() => startsBy(a!.pid, keys), 15_000))) break;
      for (const p of proxy.all) p.hold(); // silent: bytes kept, nothing closed
      const cutAt = Date.now();
      partitions++;
      const b = run.startWorker({ concurrency: perRound, leaseMs });
      await until(async () => b.alive && (await startsBy(b.pid, keys)), 8 * leaseMs + 5_000);
      for (const p of proxy.all) p.heal(); // the held bytes flow again
      partitionMs += Date.now() - cutAt;
      await until(async () => (await missing(run.ledger, keys)).length === 0, 30_000 + 10 * leaseMs);
      await b.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    await sleep(leaseMs + 1_000);
    const overlaps = await run.ledger.overlaps();
    const lost = await missing(run.ledger, range(0, n));
    const effects = await run.ledger.keyed();
    const doubleKeyed = range(0, n).reduce((sum, k) => sum + Math.max(0, (effects.get(k) ?? 0) - 1), 0);
    const dead = (await run.deadLetters()).length;
    const aborted = (await run.ledger.events()).filter((e) => e.phase === 'aborted').length;
    const failures: string[] = [];
    if (partitions < rounds) failures.push(`worker A did not start its tasks in round ${partitions + 1}`);
    if (overlaps > 0) failures.push(`${overlaps} run(s) of a key started while another run of the same key was still going`);
    if (lost.length > 0) failures.push(`${lost.length} task(s) never completed`);
    if (doubleKeyed > 0) failures.push(`${doubleKeyed} key(s) took effect more than once`);
    if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
    return {
      enqueued: n,
      completed: await run.ledger.doneCount(),
      lost: lost.length,
      duplicate_effects: doubleKeyed,
      dead_lettered: dead,
      unexpected: overlaps,
      figures: { partitions, partition_ms_total: partitionMs, lease_ms: leaseMs, run_ms: 6 * leaseMs, concurrent_runs_of_a_key: overlaps, runs_aborted_by_their_worker: aborted, seconds_to_complete: seconds },
      failures,
    };
  } finally {
    await run.close();
    for (const p of proxy.all) await p.close();
  }
}
