// celeriac vs BullMQ vs bee-queue on one local Redis, in one run. Prints JSON lines.
//
//   npx tsx bench/redis-throughput.ts            (BENCH_N=20000 BENCH_C=50 BENCH_ROUNDS=3 BENCH_LATENCY_S=5)
//
// For each round and system, in rotating order (the machine is shared and noisy, so the summary
// reports medians over rounds): bulk enqueue N no-op tasks (chunks of 1,000 through each system's
// bulk API), process them with ONE worker process at concurrency C (timed from the first handler
// start to the last stored outcome), and enqueue N more one by one (50 calls in flight, like a
// server answering 50 requests at once). Then, per system, enqueue→handler-start latency at a
// steady 1,000 tasks/s. celeriac keeps every result (that is its promise); RESULTS_KEPT says
// whether each peer keeps its own.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Job, SystemName } from './redis-systems.js';

// The workspace packages run from their TypeScript sources (no build step): that needs the
// `@celeriac/source` export condition, so a plain `npx tsx` run re-executes itself with it.
const SOURCE = '--conditions=@celeriac/source';
if (!process.execArgv.includes(SOURCE)) {
  const child = spawn(process.execPath, [SOURCE, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  child.once('exit', (code) => process.exit(code ?? 1));
  await new Promise(() => {});
}
const { cleanup, consumer, producer, RESULTS_KEPT, SYSTEMS } = await import('./redis-systems.js');

const N = Number(process.env.BENCH_N ?? 20_000);
const C = Number(process.env.BENCH_C ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LATENCY_S = Number(process.env.BENCH_LATENCY_S ?? 5);
const RATE = 1_000;
const ONE_BY_ONE_IN_FLIGHT = 50;

const now = () => performance.timeOrigin + performance.now();
const print = (line: object) => process.stdout.write(JSON.stringify(line) + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const jobs = (n: number): Job[] => Array.from({ length: n }, (_, i) => ({ i, t: 0 }));

/** Child role: one worker process. Prints {ready}, then {elapsedMs, latencies?} once n jobs are done. */
async function workerRole([system, prefix, queue, n, c, mode]: string[]): Promise<void> {
  const latencies: number[] = [];
  let first = 0;
  const onStart = (job: Job) => {
    first ||= now();
    if (mode === 'latency') latencies.push(now() - job.t);
  };
  const worker = await consumer(system as SystemName, prefix!, queue!, Number(n), Number(c), onStart);
  print({ ready: true });
  await worker.finished;
  const elapsedMs = now() - first;
  await worker.close();
  print({ elapsedMs, ...(mode === 'latency' ? { latencies } : {}) });
  process.exit(0);
}

/** Runs a worker process until it reports; `ready` fires once it is consuming. */
function runWorker(system: SystemName, prefix: string, queue: string, n: number, mode: 'drain' | 'latency', ready?: () => void) {
  const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', fileURLToPath(import.meta.url), '--worker', system, prefix, queue, String(n), String(C), mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise<{ elapsedMs: number; latencies?: number[] }>((resolve, reject) => {
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let at = buffer.indexOf('\n'); at >= 0; at = buffer.indexOf('\n')) {
        const line = JSON.parse(buffer.slice(0, at)) as { ready?: boolean; elapsedMs?: number; latencies?: number[] };
        buffer = buffer.slice(at + 1);
        if (line.ready) ready?.();
        else resolve(line as { elapsedMs: number });
      }
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`${system} worker exited with ${code}`)));
  });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

async function throughputRound(system: SystemName, round: number, prefix: string): Promise<Record<string, number>> {
  const queue = `q${round}-${system}`;
  const p = producer(system, prefix, queue);
  await p.connect();
  const all = jobs(N);
  const bulkMs = await timed(async () => {
    for (let i = 0; i < N; i += 1_000) await p.enqueueBulk(all.slice(i, i + 1_000));
  });
  const { elapsedMs } = await runWorker(system, prefix, queue, N, 'drain');
  const oneMs = await timed(async () => {
    let next = 0;
    const lane = async () => {
      while (next < N) await p.enqueueOne(all[next++]!);
    };
    await Promise.all(Array.from({ length: ONE_BY_ONE_IN_FLIGHT }, lane));
  });
  await p.close();
  const figures = { bulkEnqueuePerSec: (N / bulkMs) * 1e3, oneByOneEnqueuePerSec: (N / oneMs) * 1e3, processPerSec: (N / elapsedMs) * 1e3 };
  print({ bench: 'redis-throughput', system, round, n: N, concurrency: C, ...round2(figures) });
  return figures;
}

async function latencyRun(system: SystemName, prefix: string): Promise<void> {
  const queue = `lat-${system}`;
  const total = RATE * LATENCY_S;
  const p = producer(system, prefix, queue);
  await p.connect();
  let go!: () => void;
  const ready = new Promise<void>((r) => (go = r));
  const report = runWorker(system, prefix, queue, total, 'latency', go);
  await ready;
  await new Promise((r) => setTimeout(r, 200));
  const start = now();
  const sends: Promise<void>[] = [];
  for (let sent = 0; sent < total; ) {
    const due = Math.min(total, Math.floor(((now() - start) * RATE) / 1e3));
    for (; sent < due; sent++) sends.push(p.enqueueOne({ i: sent, t: now() }));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(sends);
  const { latencies = [] } = await report;
  await p.close();
  latencies.sort((a, b) => a - b);
  print({ bench: 'redis-latency', system, ratePerSec: RATE, tasks: total, p50Ms: +pct(latencies, 50).toFixed(2), p99Ms: +pct(latencies, 99).toFixed(2), maxMs: +latencies.at(-1)!.toFixed(2) });
}

function round2(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]));
}

async function main(): Promise<void> {
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const figures = new Map<SystemName, Record<string, number>[]>(SYSTEMS.map((s) => [s, []]));
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const order = SYSTEMS.map((_, i) => SYSTEMS[(i + round - 1) % SYSTEMS.length]!);
      for (const system of order) {
        figures.get(system)!.push(await throughputRound(system, round, prefix));
        await cleanup(prefix); // each round starts from an empty server state
      }
    }
    for (const system of SYSTEMS) await latencyRun(system, prefix);
  } finally {
    await cleanup(prefix);
  }
  const med = (s: SystemName, k: string) => median(figures.get(s)!.map((f) => f[k]!));
  const summary = Object.fromEntries(SYSTEMS.map((s) => [s, { processPerSec: Math.round(med(s, 'processPerSec')), bulkEnqueuePerSec: Math.round(med(s, 'bulkEnqueuePerSec')), oneByOneEnqueuePerSec: Math.round(med(s, 'oneByOneEnqueuePerSec')) }]));
  print({ bench: 'redis-summary', n: N, concurrency: C, rounds: ROUNDS, medians: summary, resultsKept: RESULTS_KEPT });
  const ratio = (k: string) => +(med('celeriac', k) / med('bullmq', k)).toFixed(2);
  print({ bench: 'redis-ratio', celeriacOverBullmq: { process: ratio('processPerSec'), bulkEnqueue: ratio('bulkEnqueuePerSec'), oneByOneEnqueue: ratio('oneByOneEnqueuePerSec') }, target: 2 });
}

if (process.argv[2] === '--worker') await workerRole(process.argv.slice(3));
else await main();
