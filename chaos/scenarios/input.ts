import amqp from 'amqplib';
import { connectRedisBroker } from '@celeriac/redis-backend';
import { missing, range, sleep, until, type Outcome, type Run, type ScenarioOptions } from '../harness.js';
import { runScript } from '../processes.js';

/** Puts raw text on the run's queue as if a foreign producer had sent it. */
async function injectRaw(run: Run, bodies: string[]): Promise<void> {
  if (run.kind === 'redis') {
    const broker = await connectRedisBroker(run.brokerUrl());
    try {
      for (const body of bodies) await broker.injectRaw(run.queue, body);
    } finally {
      await broker.close();
    }
    return;
  }
  const conn = await amqp.connect(run.brokerUrl());
  try {
    const ch = await conn.createConfirmChannel();
    // Declared as celeriac declares a work queue (classic, x-max-priority 9).
    await ch.assertQueue(run.queue, { durable: true, arguments: { 'x-max-priority': 9 } });
    for (const body of bodies) ch.sendToQueue(run.queue, Buffer.from(body), { persistent: true });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
}

/**
 * Bad wire input: five messages no celeriac producer would send, among N good tasks.
 * Criteria: each bad one is dead-lettered with a reason that names its problem; the good ones
 * all complete; nothing else is dead-lettered.
 */
export async function badwire(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const n = o.tasks ?? (o.fast ? 100 : 2_000);
  const { work } = run.producer();
  await run.startWorkers(2, { concurrency: 10, leaseMs: 5_000 });
  const envelope = (id: string, over: Record<string, unknown>) =>
    JSON.stringify({
      v: 1, id: `${run.id}-${id}`, task: 'chaos.work', queue: run.queue, payload: { i: 0 }, attempt: 1, maxAttempts: 3,
      eta: null, expiresAt: null, priority: 0, idempotencyKey: null, trace: {}, createdAt: Date.now(), lastError: null, ...over,
    });
  const bad: { name: string; body: string; reason: RegExp }[] = [
    { name: 'malformed JSON', body: `{"v":1,"id":"${run.id}-malformed",`, reason: /^malformed message: not JSON/ },
    { name: 'wrong version', body: envelope('version', { v: 2 }), reason: /^malformed message: .*\bv\b/ },
    { name: 'unknown task', body: envelope('unknown', { task: 'chaos.nope' }), reason: /unknown task "chaos\.nope"/ },
    { name: 'invalid payload', body: envelope('payload', { payload: { i: 'seven' } }), reason: /invalid payload for task "chaos\.work".*\bi\b/ },
    { name: 'oversized', body: envelope('oversized', { payload: { i: 0, pad: 'x'.repeat(1_100_000) } }), reason: /^oversized message: \d+ bytes, over the limit of 1048576/ },
  ];
  const started = Date.now();
  await injectRaw(run, bad.map((b) => b.body));
  await work.enqueueMany(range(0, n).map((i) => ({ payload: { i: i + 1, ms: 5 }, options: { id: `${run.id}-${i + 1}` } })));
  const good = range(1, n + 1);
  const finished = await until(async () => (await missing(run.ledger, good)).length === 0 && (await run.deadLetters()).length >= bad.length, 15_000 + n * 20);
  const seconds = (Date.now() - started) / 1000;
  await sleep(1_000);
  const dead = await run.deadLetters();
  const failures: string[] = [];
  const reasons: Record<string, string> = {};
  for (const b of bad) {
    const entry = dead.find((d) => d.raw === b.body);
    reasons[b.name] = entry ? entry.reason.slice(0, 160) : 'not dead-lettered';
    if (!entry) failures.push(`${b.name}: not dead-lettered`);
    else if (!b.reason.test(entry.reason)) failures.push(`${b.name}: dead-lettered with an imprecise reason: "${entry.reason.slice(0, 200)}" (expected ${b.reason})`);
  }
  const others = dead.filter((d) => !bad.some((b) => b.body === d.raw)).length;
  const lost = await missing(run.ledger, good);
  const ranBad = (await run.ledger.runs()).get(0) ?? 0;
  if (others > 0) failures.push(`${others} good task(s) dead-lettered`);
  if (lost.length > 0) failures.push(`${lost.length} good task(s) never ran`);
  if (!finished && lost.length === 0 && failures.length === 0) failures.push('the dead letters did not all arrive in time');
  if (ranBad > 0) failures.push(`a bad message's handler ran ${ranBad} time(s)`);
  return {
    enqueued: n + bad.length,
    completed: await run.ledger.doneCount(),
    lost: lost.length,
    duplicate_effects: await run.ledger.duplicates(),
    dead_lettered: dead.length,
    unexpected: others + ranBad + failures.filter((f) => f.includes('imprecise') || f.includes('not dead-lettered')).length,
    figures: { ...reasons, seconds_to_complete: seconds },
    failures,
  };
}

/**
 * Idempotency race: K keys (default 1,000) × 10 enqueues, from 2 producer processes at once
 * (5 each per key, concurrently), then 2 workers. Criteria: one task per key (every enqueue of a
 * key, in either process, returns the same task id), one effect per key, none lost.
 */
export async function idemRace(run: Run, o: ScenarioOptions): Promise<Outcome> {
  const keys = o.tasks ?? (o.fast ? 100 : 1_000);
  const env = { ...run.env(), CHAOS_BROKER: run.brokerUrl(), CHAOS_RUN: run.id, CHAOS_KEYS: String(keys) };
  const started = Date.now();
  const producers = await Promise.all([runScript('chaos/producer.ts', [], env), runScript('chaos/producer.ts', [], env)]);
  const ids = new Map<number, Set<string>>();
  let enqueued = 0;
  let errors = 0;
  for (const p of producers) {
    if (p.code !== 0) errors++;
    for (const line of p.stdout.split('\n').filter(Boolean)) {
      const { k, id } = JSON.parse(line) as { k: number; id: string };
      enqueued++;
      if (!ids.has(k)) ids.set(k, new Set());
      ids.get(k)!.add(id);
    }
  }
  await run.startWorkers(2, { concurrency: 20, leaseMs: 5_000 });
  const all = range(0, keys);
  const finished = await until(async () => (await run.ledger.keyed()).size >= keys, 30_000 + keys * 20);
  await sleep(1_500);
  const seconds = (Date.now() - started) / 1000;
  const effects = await run.ledger.keyed();
  const multi = all.filter((k) => (ids.get(k)?.size ?? 0) > 1);
  const doubleKeyed = all.reduce((sum, k) => sum + Math.max(0, (effects.get(k) ?? 0) - 1), 0);
  const noEffect = all.filter((k) => !effects.has(k));
  const dead = (await run.deadLetters()).length;
  const failures: string[] = [];
  if (errors > 0 || enqueued !== keys * 10) failures.push(`producers failed (${enqueued} of ${keys * 10} enqueues confirmed): ${producers.map((p) => p.stderr.trim().split('\n').pop()).join(' | ')}`);
  if (multi.length > 0) failures.push(`${multi.length} key(s) made more than one task (${[...ids.values()].reduce((s, x) => s + x.size, 0)} tasks for ${keys} keys)`);
  if (doubleKeyed > 0) failures.push(`${doubleKeyed} key(s) took effect more than once`);
  if (noEffect.length > 0 || !finished) failures.push(`${noEffect.length} key(s) never took effect`);
  if (dead > 0) failures.push(`${dead} task(s) dead-lettered`);
  return {
    enqueued,
    completed: effects.size,
    lost: noEffect.length,
    duplicate_effects: doubleKeyed,
    dead_lettered: dead,
    unexpected: multi.length,
    figures: { keys, tasks_created: [...ids.values()].reduce((s, x) => s + x.size, 0), seconds_to_complete: seconds },
    failures,
  };
}
