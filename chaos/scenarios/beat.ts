import { sleep, type Outcome, type Run, type ScenarioOptions } from '../harness.js';
import { startBeat, type CeleriacProcess } from '../processes.js';

/**
 * Beat: a 1 s schedule, 3 `celeriac beat` processes and two workers. A third of the way through,
 * one scheduler is SIGKILLed; two thirds through, a new one starts (the restart). Then all stop.
 * Criterion: each tick between the first whole second after all three started and the last
 * whole second before they stopped ran exactly once (a missing tick is lost, a repeat a duplicate).
 */
export async function beat(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const seconds = o.tasks ?? (o.fast ? 6 : 60);
  const schedule = `chaos-beat-${run.id}`;
  const env = run.env({ CHAOS_SCHEDULE: schedule });
  // Two workers: a repeat of a tick must not hide by landing in the process that already ran it.
  await run.startWorkers(2, { concurrency: 5, leaseMs: 5_000 });
  const beats: CeleriacProcess[] = Array.from({ length: 3 }, () => startBeat(run.brokerUrl(), env, run.logDir));
  try {
    await Promise.all(beats.map((b) => b.ready));
    const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    await sleep(Math.round((seconds * 1000) / 3));
    beats[0]!.kill('SIGKILL');
    await sleep(Math.round((seconds * 1000) / 3));
    const restarted = startBeat(run.brokerUrl(), env, run.logDir);
    beats.push(restarted);
    await restarted.ready;
    await sleep(Math.round((seconds * 1000) / 3));
    const to = Math.floor(Date.now() / 1000) * 1000 - 1000;
    await Promise.all(beats.map((b) => b.stop()));
    await sleep(3_000); // the worker runs the last ticks
    const ran = await run.ledger.redis.hgetall(`${run.ledger.prefix}:ticks`);
    const expected: number[] = [];
    for (let t = from; t <= to; t += 1000) expected.push(t);
    const missingTicks = expected.filter((t) => !ran[String(t)]);
    const repeats = expected.reduce((sum, t) => sum + Math.max(0, Number(ran[String(t)] ?? 0) - 1), 0);
    const dead = (await run.deadLetters()).length;
    const failures: string[] = [];
    if (missingTicks.length > 0) failures.push(`${missingTicks.length} of ${expected.length} tick(s) never ran (e.g. ${missingTicks.slice(0, 3).map((t) => new Date(t).toISOString()).join(', ')})`);
    if (repeats > 0) failures.push(`${repeats} tick run(s) beyond one per tick`);
    if (dead > 0) failures.push(`${dead} tick(s) dead-lettered`);
    return {
      enqueued: expected.length,
      completed: expected.length - missingTicks.length,
      lost: missingTicks.length,
      duplicate_effects: repeats,
      dead_lettered: dead,
      unexpected: dead,
      figures: { schedulers: 3, killed: 1, restarted: 1, window_s: expected.length },
      failures,
    };
  } finally {
    for (const b of beats) b.kill('SIGKILL');
  }
}
