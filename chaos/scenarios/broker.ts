import { missing, sleep, until, type Outcome, type Run, type ScenarioOptions } from '../harness.js';
import { PrivateRedis, startPrivateRabbit } from '../services.js';

/** How long an enqueue may take to settle: the app's enqueueTimeoutMs (default 10 s) plus slack. */
const SETTLE_BOUND_MS = 15_000;
/** An enqueue that has not settled after this long is reported as never settling. */
const GIVE_UP_MS = 60_000;

export const brokerRestart = (run: Run, o: ScenarioOptions) => brokerOutage(run, o, 'SIGTERM');
export const brokerKill = (run: Run, o: ScenarioOptions) => brokerOutage(run, o, 'SIGKILL');

/**
 * Broker restart (SIGTERM) or crash (SIGKILL) on a private server the suite starts itself
 * (redis-server with appendonly yes + appendfsync always; a RabbitMQ node of its own), while a
 * producer keeps 10 enqueues in flight and 2 workers consume. The broker goes down a third of
 * the way through, stays down 2 s, and comes back on the same port and files.
 * Criteria: every confirmed enqueue completes (0 lost); every enqueue settles (resolves or
 * rejects) within 15 s (enqueueTimeoutMs 10 s + slack). Repeats are reported, not failed:
 * tasks in flight when the broker died run again (at-least-once).
 */
async function brokerOutage(run: Run, o: ScenarioOptions, signal: 'SIGTERM' | 'SIGKILL'): Promise<Outcome> {
  const n = o.tasks ?? (o.fast ? 300 : 3_000);
  run.privateBroker = true;
  const server = run.kind === 'redis' ? await PrivateRedis.start(true) : await startPrivateRabbit();
  try {
    const { work } = run.producer({ brokerPort: server.port });
    await run.startWorkers(2, { concurrency: 20, leaseMs: 5_000, brokerPort: server.port });
    const confirmed: number[] = [];
    const settleMs: number[] = [];
    let rejected = 0;
    let unsettled = 0;
    let outage: Promise<void> | undefined;
    let downAt = 0;
    let upAt = 0;
    const started = Date.now();
    let next = 0;
    // 10 enqueues in flight, each paced 10 ms apart so the outage falls mid-stream.
    const lane = async () => {
      while (next < n) {
        const i = next++;
        if (i === Math.floor(n / 3)) {
          outage = (async () => {
            downAt = Date.now();
            await server.restart(signal, 2_000);
            upAt = Date.now();
          })();
        }
        const t0 = Date.now();
        const attempt = work.enqueue({ i, ms: 20 }, { id: `${run.id}-${i}` }).then(
          () => 'ok' as const,
          () => 'rejected' as const,
        );
        const result = await Promise.race([attempt, sleep(GIVE_UP_MS).then(() => 'hung' as const)]);
        const took = Date.now() - t0;
        if (result === 'ok') confirmed.push(i);
        else if (result === 'rejected') rejected++;
        if (result === 'hung') unsettled++;
        else settleMs.push(took);
        await sleep(10);
      }
    };
    await Promise.all(Array.from({ length: 10 }, lane));
    await outage;
    const slow = settleMs.filter((ms) => ms > SETTLE_BOUND_MS).length;
    const finished = await until(async () => (await missing(run.ledger, confirmed)).length === 0, 60_000 + n * 20);
    const seconds = (Date.now() - started) / 1000;
    await sleep(1_000);
    const lost = await missing(run.ledger, confirmed);
    const dead = (await run.deadLetters(server.port).catch(() => [])).length;
    const failures: string[] = [];
    if (lost.length > 0 || !finished) failures.push(`${lost.length} confirmed enqueue(s) never ran (e.g. ${lost.slice(0, 5).join(', ')})`);
    if (unsettled > 0) failures.push(`${unsettled} enqueue(s) never settled (gave up after ${GIVE_UP_MS / 1000} s)`);
    if (slow > 0) failures.push(`${slow} enqueue(s) took more than ${SETTLE_BOUND_MS / 1000} s to settle (longest ${Math.max(...settleMs)} ms)`);
    if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
    return {
      enqueued: n,
      completed: await run.ledger.doneCount(),
      lost: lost.length,
      duplicate_effects: await run.ledger.duplicates(),
      dead_lettered: dead,
      unexpected: unsettled + slow,
      figures: {
        confirmed: confirmed.length,
        rejected,
        longest_settle_ms: settleMs.length ? Math.max(...settleMs) : 0,
        broker_down_ms: upAt - downAt,
        seconds_to_complete: seconds,
        signal,
      },
      failures,
    };
  } finally {
    await run.close();
    await server.remove();
  }
}
