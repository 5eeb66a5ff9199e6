// celeriac on RabbitMQ vs a raw amqplib loop with the same guarantees, in one run. Prints JSON lines.
//
//   npx tsx bench/amqp-throughput.ts     (BENCH_N=20000 BENCH_C=50 BENCH_ROUNDS=3 BENCH_MAX_PRIORITY=0 CELERIAC_AMQP_URL=amqp://…)
//
// Same guarantees on both sides: durable queue, persistent messages, publisher confirms (a publish
// counts once confirmed), manual ack after the handler, prefetch = concurrency C, the same JSON
// envelope as the body, the same queue declaration (BENCH_MAX_PRIORITY=0: plain durable classic
// queues, celeriac's `?maxPriority=0`; 9 = celeriac's default priority queues, for both). Per round, sides in rotating order (the machine is shared and noisy; the
// summary reports medians): bulk publish N (chunks of 1,000: `enqueueMany` vs publish + confirms),
// publish N one by one (50 calls in flight), and process the first N in ONE worker process
// (timed from the first handler start to the last ack; CPU time of that process per 1,000 tasks
// is reported too, since the machine is shared and wall-clock figures wander). Sides:
//   raw               amqplib: confirm channel, consume with prefetch C, JSON.parse, ack
//   celeriac          createApp + Worker, producer with ?replies=false: no results kept
//   celeriac+results  the same, every result sent back to the producer's reply queue (kept)
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

// Workspace packages run from TypeScript sources: re-execute with the `@celeriac/source` condition.
const SOURCE = '--conditions=@celeriac/source';
if (!process.execArgv.includes(SOURCE)) {
  const child = spawn(process.execPath, [SOURCE, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  child.once('exit', (code) => process.exit(code ?? 1));
  await new Promise(() => {});
}
const { default: amqp } = await import('amqplib');
const { createApp } = await import('@celeriac/core');
const { Worker } = await import('@celeriac/worker');
const { z } = await import('zod');

const URL = process.env.CELERIAC_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const N = Number(process.env.BENCH_N ?? 20_000);
const C = Number(process.env.BENCH_C ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MAX_PRIORITY = Number(process.env.BENCH_MAX_PRIORITY ?? 0);
const IN_FLIGHT = 50;
const SIDES = ['raw', 'celeriac', 'celeriac+results'] as const;
type Side = (typeof SIDES)[number];

const now = () => performance.timeOrigin + performance.now();
const print = (line: object) => process.stdout.write(JSON.stringify(line) + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const brokerUrl = (side: Side) => `${URL}?maxPriority=${MAX_PRIORITY}${side === 'celeriac' ? '&replies=false' : ''}`;
const queueArgs = MAX_PRIORITY > 0 ? { 'x-max-priority': MAX_PRIORITY } : {};

/** The celeriac envelope, so both sides carry the same bytes. */
function envelope(queue: string, i: number): string {
  const t = Date.now();
  return JSON.stringify({ v: 1, id: randomUUID(), task: 'bench.noop', queue, payload: { i }, attempt: 1, maxAttempts: 3, eta: null, expiresAt: null, priority: 0, idempotencyKey: null, trace: {}, createdAt: t, lastError: null });
}

function celeriacApp(side: Side, queue: string) {
  const app = createApp({ broker: brokerUrl(side), defaultQueue: queue });
  const noop = app.task('bench.noop', { input: z.object({ i: z.number() }) }, () => null);
  return { app, noop };
}

interface Producer {
  bulk(from: number, count: number): Promise<void>;
  one(i: number): Promise<void>;
  close(): Promise<void>;
}

async function producer(side: Side, queue: string): Promise<Producer> {
  if (side !== 'raw') {
    const { app, noop } = celeriacApp(side, queue);
    await app.connection();
    return {
      bulk: async (from, count) => void (await noop.enqueueMany(Array.from({ length: count }, (_, k) => ({ payload: { i: from + k } })))),
      one: async (i) => void (await noop.enqueue({ i })),
      close: () => app.close(),
    };
  }
  const conn = await amqp.connect(URL);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(queue, { durable: true, arguments: queueArgs });
  const send = (i: number) =>
    new Promise<void>((resolve, reject) =>
      ch.publish('', queue, Buffer.from(envelope(queue, i)), { persistent: true, contentType: 'application/json', mandatory: true }, (err) => (err ? reject(err) : resolve())),
    );
  return {
    bulk: async (from, count) => void (await Promise.all(Array.from({ length: count }, (_, k) => send(from + k)))),
    one: send,
    close: () => conn.close(),
  };
}

/** Child role: consume `n` messages with concurrency `c`; prints {ready} then {elapsedMs, cpuMs}. */
async function workerRole([side, queue, n, c]: string[]): Promise<void> {
  const total = Number(n);
  let first = 0;
  let cpu0 = process.cpuUsage();
  const mark = () => {
    if (first) return;
    first = now();
    cpu0 = process.cpuUsage();
  };
  const cpuMs = () => {
    const d = process.cpuUsage(cpu0);
    return (d.user + d.system) / 1e3;
  };
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  if (side === 'raw') {
    const conn = await amqp.connect(URL);
    const ch = await conn.createChannel();
    await ch.prefetch(Number(c));
    await ch.consume(queue!, (msg) => {
      if (!msg) return;
      mark();
      JSON.parse(msg.content.toString());
      ch.ack(msg);
      if (++done === total) finish();
    });
    print({ ready: true });
    await finished;
    const elapsedMs = now() - first;
    print({ elapsedMs, cpuMs: cpuMs() });
    await conn.close();
  } else {
    const { app } = celeriacApp(side as Side, queue!);
    app.getTask('bench.noop');
    const worker = new Worker(app, { queues: [queue!], concurrency: Number(c) });
    worker.on('task:started', mark);
    worker.on('task:succeeded', () => ++done === total && finish());
    await worker.start();
    print({ ready: true });
    await finished;
    // The ack (and, with results, the confirmed reply before it) follows the event: wait for it.
    const { broker } = await app.connection();
    while ((await broker.stats(queue!)).inFlight > 0) await new Promise((r) => setTimeout(r, 2));
    const elapsedMs = now() - first;
    print({ elapsedMs, cpuMs: cpuMs() });
    await worker.stop();
    await app.close();
  }
  process.exit(0);
}

function runWorker(side: Side, queue: string): Promise<{ elapsedMs: number; cpuMs: number }> {
  const child = spawn(process.execPath, [SOURCE, '--import', 'tsx', fileURLToPath(import.meta.url), '--worker', side, queue, String(N), String(C)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
        const line = JSON.parse(buffer.slice(0, at)) as { elapsedMs?: number; cpuMs: number };
        buffer = buffer.slice(at + 1);
        if (line.elapsedMs !== undefined) resolve(line as { elapsedMs: number; cpuMs: number });
      }
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`${side} worker exited with ${code}`)));
  });
}

/** Wall-clock ms and this process's CPU ms spent in `fn`. */
async function timed(fn: () => Promise<void>): Promise<[number, number]> {
  const start = now();
  const cpu = process.cpuUsage();
  await fn();
  const d = process.cpuUsage(cpu);
  return [now() - start, (d.user + d.system) / 1e3];
}

async function round(side: Side, r: number, run: string): Promise<Record<string, number>> {
  const queue = `bench-${run}-${r}-${side.replace('+', '-')}`;
  const p = await producer(side, queue);
  const [bulkMs, bulkCpuMs] = await timed(async () => {
    for (let i = 0; i < N; i += 1_000) await p.bulk(i, Math.min(1_000, N - i));
  });
  const { elapsedMs: processMs, cpuMs: processCpuMs } = await runWorker(side, queue);
  const [oneMs, oneCpuMs] = await timed(async () => {
    let next = 0;
    const lane = async () => {
      while (next < N) await p.one(next++);
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  });
  await p.close();
  await removeQueues(queue);
  const perK = (ms: number) => (ms / N) * 1e3;
  const figures = {
    bulkPublishPerSec: (N / bulkMs) * 1e3,
    oneByOnePublishPerSec: (N / oneMs) * 1e3,
    processPerSec: (N / processMs) * 1e3,
    bulkPublishCpuMsPer1k: perK(bulkCpuMs),
    oneByOnePublishCpuMsPer1k: perK(oneCpuMs),
    processCpuMsPer1k: perK(processCpuMs),
  };
  print({ bench: 'amqp-throughput', side, round: r, n: N, concurrency: C, maxPriority: MAX_PRIORITY, ...Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Math.round(v)])) });
  return figures;
}

async function removeQueues(queue: string): Promise<void> {
  const conn = await amqp.connect(URL);
  for (const name of [queue, `${queue}:dead`]) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.deleteQueue(name).catch(() => {});
    await ch.close().catch(() => {});
  }
  await conn.close();
}

async function main(): Promise<void> {
  const run = randomUUID().slice(0, 8);
  const figures = new Map<Side, Record<string, number>[]>(SIDES.map((s) => [s, []]));
  for (let r = 1; r <= ROUNDS; r++) {
    for (let k = 0; k < SIDES.length; k++) {
      const side = SIDES[(k + r - 1) % SIDES.length]!;
      figures.get(side)!.push(await round(side, r, run));
    }
  }
  const med = (s: Side, k: string) => median(figures.get(s)!.map((f) => f[k]!));
  const keys = ['bulkPublishPerSec', 'oneByOnePublishPerSec', 'processPerSec'];
  const cpuKeys = ['bulkPublishCpuMsPer1k', 'oneByOnePublishCpuMsPer1k', 'processCpuMsPer1k'];
  const medians = Object.fromEntries(SIDES.map((s) => [s, Object.fromEntries([...keys, ...cpuKeys].map((k) => [k, Math.round(med(s, k))]))]));
  print({ bench: 'amqp-summary', n: N, concurrency: C, rounds: ROUNDS, maxPriority: MAX_PRIORITY, medians });
  // Two views of the ratio: of the medians, and the median of per-round ratios (sides of one round
  // ran minutes apart, so a round's ratio is less exposed to the shared machine's load swings).
  const ratio = (s: Side, k: string) => +(med(s, k) / med('raw', k)).toFixed(2);
  const paired = (s: Side, k: string) => +median(figures.get(s)!.map((f, i) => f[k]! / figures.get('raw')![i]![k]!)).toFixed(2);
  const both = (s: Side) => Object.fromEntries(keys.map((k) => [k, { ofMedians: ratio(s, k), medianOfRounds: paired(s, k) }]));
  print({ bench: 'amqp-ratio', target: 0.7, celeriacOverRaw: both('celeriac'), celeriacWithResultsOverRaw: both('celeriac+results') });
}

if (process.argv[2] === '--worker') await workerRole(process.argv.slice(3));
else await main();
