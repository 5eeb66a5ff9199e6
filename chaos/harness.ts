import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import type { DeadLetter } from '@celeriac/core';
import { Ledger } from './ledger.js';
import { startWorker, type CeleriacProcess } from './processes.js';
import { ensureLedger } from './services.js';
import { chaosApp } from './tasks.js';
import { removePrefix } from '../test/redis/helpers.js';

export type BrokerKind = 'redis' | 'amqp' | 'amqp+redis';
export const BROKERS: readonly BrokerKind[] = ['redis', 'amqp', 'amqp+redis'];

export const SHARED_REDIS_PORT = 6379;
export const SHARED_AMQP_PORT = 5672;

/** What a scenario reports; `failures` says which criterion failed and why (empty: passed). */
export interface Outcome {
  enqueued: number;
  completed: number;
  lost: number;
  duplicate_effects: number;
  dead_lettered: number;
  unexpected: number;
  /** Scenario-specific measurements (takeover time, throughput ratio, RSS growth…). */
  figures: Record<string, number | string | boolean>;
  failures: string[];
}

export interface ScenarioOptions {
  broker: BrokerKind;
  /** --tasks; each scenario has its own default (full) and a small one (fast). */
  tasks: number | undefined;
  fast: boolean;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `check` holds or `withinMs` passes; returns whether it held. Every wait here is bounded. */
export async function until(check: () => Promise<boolean> | boolean, withinMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

/**
 * One scenario's world: its broker URLs (a unique prefix on Redis, a unique queue on RabbitMQ),
 * its ledger, its worker processes, and the runner's own app to enqueue with.
 * 1. Builds URLs for the broker kind, on the shared servers or on ports a scenario gives (a
 *    private server, a proxy).
 * 2. Starts and tracks `celeriac worker` processes; stops them all at the end.
 * 3. Cleans up what it created: Redis keys under its prefix, RabbitMQ queues named after it, ledger keys.
 */
export class Run {
  readonly id = randomUUID().slice(0, 8);
  readonly queue: string;
  readonly prefix: string;
  readonly logDir: string;
  readonly workers: CeleriacProcess[] = [];
  /** Set by scenarios whose broker is a private server (nothing to clean on the shared ones). */
  privateBroker = false;
  /** Extra query parameters for Redis URLs (e.g. `&tombstoneMs=60000`). */
  redisExtra = '';
  ledger!: Ledger;
  #ledgerUrl = '';
  readonly #apps: { close(): Promise<void> }[] = [];

  constructor(readonly scenario: string, readonly kind: BrokerKind) {
    this.queue = `chaos_${scenario.replace(/[^a-z0-9]/g, '_')}_${this.id}`;
    this.prefix = `chaos-${scenario}-${this.id}`;
    this.logDir = join(tmpdir(), 'celeriac-chaos', 'logs', `${scenario}-${kind}-${this.id}`);
  }

  async open(): Promise<this> {
    this.#ledgerUrl = await ensureLedger();
    this.ledger = new Ledger(this.#ledgerUrl, `${this.prefix}:ledger`);
    return this;
  }

  /** The broker URL on `port` (default: the shared server of this kind). */
  brokerUrl(port?: number): string {
    if (this.kind === 'redis') return `redis://127.0.0.1:${port ?? SHARED_REDIS_PORT}?prefix=${this.prefix}${this.redisExtra}`;
    return `amqp://guest:guest@127.0.0.1:${port ?? SHARED_AMQP_PORT}`;
  }

  /** The result store URL: the broker's own unless RabbitMQ is paired with Redis. */
  resultsUrl(port = SHARED_REDIS_PORT): string | undefined {
    return this.kind === 'amqp+redis' ? `redis://127.0.0.1:${port}?prefix=${this.prefix}${this.redisExtra}` : undefined;
  }

  /** The environment chaos/app.ts reads in each worker. */
  env(extra: Record<string, string> = {}, resultsPort?: number): Record<string, string> {
    const results = this.resultsUrl(resultsPort);
    return {
      CHAOS_QUEUE: this.queue,
      CHAOS_LEDGER_URL: this.#ledgerUrl,
      CHAOS_LEDGER_PREFIX: this.ledger.prefix,
      ...(results ? { CHAOS_RESULTS_URL: results } : {}),
      ...extra,
    };
  }

  /** An app of the runner's own, to enqueue the chaos tasks (its handlers never run here). */
  producer(options: { brokerPort?: number; resultsPort?: number } = {}) {
    const chaos = chaosApp({ broker: this.brokerUrl(options.brokerPort), results: this.resultsUrl(options.resultsPort), queue: this.queue, ledger: null });
    this.#apps.push(chaos.app);
    return chaos;
  }

  startWorker(options: { concurrency: number; leaseMs: number; brokerPort?: number; resultsPort?: number; env?: Record<string, string> }): CeleriacProcess {
    const worker = startWorker({
      broker: this.brokerUrl(options.brokerPort),
      queue: this.queue,
      concurrency: options.concurrency,
      leaseMs: options.leaseMs,
      env: this.env(options.env, options.resultsPort),
      logDir: this.logDir,
    });
    this.workers.push(worker);
    return worker;
  }

  async startWorkers(n: number, options: Parameters<Run['startWorker']>[0]): Promise<CeleriacProcess[]> {
    const started = Array.from({ length: n }, () => this.startWorker(options));
    await Promise.all(started.map((w) => w.ready));
    return started;
  }

  /** Dead letters of the run's queue, through a fresh connection to `port`. */
  async deadLetters(brokerPort?: number): Promise<DeadLetter[]> {
    const { app } = chaosApp({ broker: this.brokerUrl(brokerPort), results: this.resultsUrl(), queue: this.queue, ledger: null });
    try {
      const { broker } = await app.connection();
      return await broker.deadLetters(this.queue, 10_000);
    } finally {
      await app.close().catch(() => {});
    }
  }

  /** Stops every worker (SIGKILL: the run is over), closes apps, removes keys and queues. */
  #closing: Promise<void> | undefined;
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const w of this.workers) w.kill('SIGKILL');
    await Promise.all(this.workers.map((w) => Promise.race([w.exited, sleep(5_000)])));
    for (const app of this.#apps) await Promise.race([app.close().catch(() => {}), sleep(5_000)]);
    await this.ledger.clear().catch(() => {});
    this.ledger.close();
    await Promise.race([this.#cleanShared(), sleep(15_000)]).catch(() => {});
  }

  async #cleanShared(): Promise<void> {
    const shared = `redis://127.0.0.1:${SHARED_REDIS_PORT}`;
    if (this.kind === 'amqp+redis' || (this.kind === 'redis' && !this.privateBroker)) await removePrefix(this.prefix, shared);
    if (this.kind !== 'redis' && !this.privateBroker) await deleteAmqpQueues(this.brokerUrl(), this.queue);
  }
}

/** Deletes a celeriac queue and its companions (dead letters, delay ladder) on RabbitMQ. */
async function deleteAmqpQueues(url: string, queue: string): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const names = [queue, `${queue}:dead`, ...Array.from({ length: 32 }, (_, k) => `${queue}:delay:${2 ** k}`)];
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    for (const name of names) await ch.deleteQueue(name).catch(() => {});
    await ch.close().catch(() => {});
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Indices in [0, n) whose effect is missing from the ledger, leaving out `except`. */
export async function missing(ledger: Ledger, indices: Iterable<number>, except: Set<number> = new Set()): Promise<number[]> {
  const done = await ledger.doneSet();
  const out: number[] = [];
  for (const i of indices) if (!except.has(i) && !done(i)) out.push(i);
  return out;
}

export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, n) => from + n);
