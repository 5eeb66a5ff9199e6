// The three systems the Redis benchmark compares, behind one small shape each: a producer (bulk
// and one-by-one enqueue) and a worker (no-op handler returning a small value, concurrency C).
import { createApp } from '@celeriac/core';
import { Worker as CeleriacWorker } from '@celeriac/worker';
import BeeQueue from 'bee-queue';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';

export const REDIS = { host: '127.0.0.1', port: 6379 };
export const SYSTEMS = ['celeriac', 'bullmq', 'bee-queue'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The job payload: `i` a sequence number, `t` the enqueue time (epoch ms, sub-ms) for latency runs. */
export interface Job {
  i: number;
  t: number;
}

export interface Producer {
  /** Opens connections (and loads scripts), so the timed phases measure steady work only. */
  connect(): Promise<void>;
  enqueueBulk(jobs: Job[]): Promise<void>;
  enqueueOne(job: Job): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  /** Resolves when `n` jobs have finished and their outcome is stored (per that system's rules). */
  finished: Promise<void>;
  close(): Promise<void>;
}

/** Whether each system keeps the handler's return value after success, as configured here. */
export const RESULTS_KEPT: Record<SystemName, string> = {
  celeriac: 'yes: result record per task (TTL 24 h), written atomically with the ack',
  bullmq: 'yes: removeOnComplete false (its default) keeps the job and its returnvalue',
  'bee-queue': 'no: removeOnSuccess false keeps the job record, but bee-queue never stores return values (it only publishes them as events)',
};

const celeriacApp = (prefix: string, queue: string, onStart: (job: Job) => void = () => {}) => {
  const app = createApp({ broker: `redis://${REDIS.host}:${REDIS.port}?prefix=${prefix}`, defaultQueue: queue });
  const task = app.task('bench.noop', { input: z.object({ i: z.number(), t: z.number() }) }, (job) => (onStart(job), job.i));
  return { app, task };
};

export function producer(system: SystemName, prefix: string, queue: string): Producer {
  switch (system) {
    case 'celeriac': {
      const { app, task } = celeriacApp(prefix, queue);
      return {
        connect: async () => void (await (await app.connection()).broker.stats(queue)),
        enqueueBulk: async (jobs) => void (await task.enqueueMany(jobs.map((payload) => ({ payload })))),
        enqueueOne: async (job) => void (await task.enqueue(job)),
        close: () => app.close(),
      };
    }
    case 'bullmq': {
      const q = new BullQueue(queue, { connection: { ...REDIS }, prefix });
      return {
        connect: async () => void (await q.waitUntilReady(), await q.getJobCounts()),
        enqueueBulk: async (jobs) => void (await q.addBulk(jobs.map((data) => ({ name: 'noop', data })))),
        enqueueOne: async (job) => void (await q.add('noop', job)),
        close: () => q.close(),
      };
    }
    case 'bee-queue': {
      const q = new BeeQueue(queue, { prefix, redis: { ...REDIS }, isWorker: false, getEvents: false });
      return {
        connect: async () => void (await q.ready(), await q.checkHealth()),
        enqueueBulk: async (jobs) => void (await q.saveAll(jobs.map((data) => q.createJob(data)))),
        enqueueOne: async (job) => void (await q.createJob(job).save()),
        close: () => q.close(),
      };
    }
  }
}

/** Starts a worker; `onStart` sees each job as its handler starts. */
export async function consumer(system: SystemName, prefix: string, queue: string, n: number, concurrency: number, onStart: (job: Job) => void): Promise<Consumer> {
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const count = () => {
    if (++done === n) finish();
  };
  switch (system) {
    case 'celeriac': {
      const { app } = celeriacApp(prefix, queue, onStart);
      const worker = new CeleriacWorker(app, { queues: [queue], concurrency });
      const { broker } = await app.connection();
      // 'task:succeeded' fires before the ack is sent: the run ends when the server counts them all.
      worker.on('task:succeeded', count);
      await worker.start();
      return {
        finished: finished.then(async () => {
          while ((await broker.stats(queue)).completed < n) await new Promise((r) => setTimeout(r, 1));
        }),
        close: async () => {
          await worker.stop();
          await app.close();
        },
      };
    }
    case 'bullmq': {
      const worker = new BullWorker(queue, async (job) => (onStart(job.data as Job), (job.data as Job).i), {
        connection: { ...REDIS, maxRetriesPerRequest: null },
        prefix,
        concurrency,
      });
      worker.on('completed', count); // emitted after the job was moved to completed
      await worker.waitUntilReady();
      return { finished, close: () => worker.close() };
    }
    case 'bee-queue': {
      const q = new BeeQueue(queue, { prefix, redis: { ...REDIS }, isWorker: true, getEvents: false, removeOnSuccess: false });
      q.on('succeeded', count); // emitted after the job's status was written
      q.process(concurrency, async (job: { data: Job }) => (onStart(job.data), job.data.i));
      await q.ready();
      return { finished, close: () => q.close() };
    }
  }
}

/** Deletes every key the run created (all three systems were given the same unique prefix). */
export async function cleanup(prefix: string): Promise<void> {
  const redis = new Redis(REDIS);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}
