import { spawn } from 'node:child_process';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Scheduler, Worker } from '@celeriac/worker';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AMQP_URL } from '../packages/amqp-backend/src/testing.js';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';

// `celeriac inspect | revoke | pause | resume` as an operator runs them: a real process, against the
// Redis a test app and worker use, tables by default, --json for scripts, exit codes 0 / 1 / 2.
const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];
const prefix = uniquePrefix('cliop');
const url = urlWith(prefix);
afterAll(() => removePrefix(prefix));

function celeriac(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, CELERIAC_BROKER_URL: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const apps: App[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop({ graceMs: 1_000 });
  for (const a of apps.splice(0)) await a.close();
});

function setup() {
  const queue = uniqueQueue('op');
  const app = createApp({ broker: url, defaultQueue: queue });
  apps.push(app);
  const job = app.task('op.job', { input: z.object({ n: z.number() }) }, ({ n }) => n * 2);
  return { app, queue, job };
}

describe('celeriac inspect and control commands', () => {
  it('inspect queues shows a queue with its counts as a table and as JSON; pause and resume flip it', async () => {
    const { queue, job } = setup();
    await job.enqueueMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    const table = await celeriac(['inspect', 'queues', '--broker', url]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^QUEUE\s+READY\s+DELAYED\s+IN FLIGHT\s+DEAD\s+COMPLETED\s+FAILED\s+PAUSED$/);
    expect(lines.find((l) => l.startsWith(queue))).toMatch(new RegExp(`^${queue}\\s+2\\s+0\\s+0\\s+0\\s+0\\s+0$`));
    const paused = await celeriac(['pause', queue, '--broker', url]);
    expect([paused.code, paused.stdout.trim()]).toEqual([0, `paused ${queue}`]);
    const asJson = await celeriac(['inspect', 'queues', '--json'], { CELERIAC_BROKER_URL: url });
    expect(asJson.code).toBe(0);
    expect((JSON.parse(asJson.stdout) as { queue: string }[]).find((q) => q.queue === queue)).toEqual({ queue, ready: 2, delayed: 0, inFlight: 0, dead: 0, completed: 0, failed: 0, paused: true });
    expect((await celeriac(['resume', queue, '--broker', url])).stdout.trim()).toBe(`resumed ${queue}`);
    expect((await celeriac(['resume', queue, '--broker', url])).stdout.trim()).toBe(`${queue} was not paused`);
  });

  it('revoke, then inspect task says revoked; an unknown task exits 1; a finished one says so', async () => {
    const { app, queue, job } = setup();
    const waiting = await job.enqueue({ n: 3 });
    const revoked = await celeriac(['revoke', waiting.id, '--broker', url]);
    expect([revoked.code, revoked.stdout.trim()]).toEqual([0, `revoked ${waiting.id}`]);
    const task = await celeriac(['inspect', 'task', waiting.id, '--broker', url]);
    expect(task.code).toBe(0);
    expect(task.stdout).toMatch(new RegExp(`^id:\\s+${waiting.id}$`, 'm'));
    expect(task.stdout).toMatch(/^state:\s+pending$/m); // not settled yet: no worker runs this queue
    expect(task.stdout).toMatch(/^revoked:\s+\d{4}-\d\d-\d\dT\S+Z$/m);
    expect(task.stdout).toMatch(new RegExp(`^queue:\\s+${queue}$`, 'm'));
    const missing = await celeriac(['inspect', 'task', 'no-such-task', '--broker', url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/task no-such-task not found in any known queue/);
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const done = await job.enqueue({ n: 4 });
    expect(await done.result({ timeoutMs: 10_000 })).toBe(8);
    const again = await celeriac(['revoke', done.id, '--queue', queue, '--broker', url]);
    expect([again.code, again.stdout.trim()]).toEqual([0, `task ${done.id} already succeeded: nothing to revoke`]);
    const finished = JSON.parse((await celeriac(['inspect', 'task', done.id, '--json', '--broker', url])).stdout) as object;
    expect(finished).toMatchObject({ id: done.id, state: 'succeeded', result: 8, attempt: 1, queue, task: 'op.job' });
  });

  it('inspect workers and schedules list what runs, as tables and JSON', async () => {
    const { app, queue, job } = setup();
    app.schedule(`every-hour-${queue}`, { every: '1h', task: job, payload: { n: 0 } });
    const w = new Worker(app, { queues: [queue], concurrency: 3, blockMs: 200 });
    workers.push(w);
    await w.start();
    const scheduler = new Scheduler(app);
    await scheduler.start();
    await scheduler.stop();
    const table = await celeriac(['inspect', 'workers', '--broker', url]);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+HOST\s+PID\s+QUEUES\s+ACTIVE\s+PROCESSED\s+FAILED\s+UP\s+LAST SEEN$/);
    expect(table.stdout).toMatch(new RegExp(`\\s${process.pid}\\s+${queue}\\s+0/3\\s`));
    const listed = JSON.parse((await celeriac(['inspect', 'workers', '--json', '--broker', url])).stdout) as { pid: number; queues: string[] }[];
    expect(listed.filter((x) => x.queues.includes(queue))).toEqual([expect.objectContaining({ pid: process.pid, concurrency: 3 })]);
    const schedules = await celeriac(['inspect', 'schedules', '--broker', url]);
    expect(schedules.stdout).toMatch(new RegExp(`^every-hour-${queue}\\s+op\\.job\\s+${queue}\\s+1h\\s+UTC\\s`, 'm'));
  });

  it('purge, redrive and discard from the command line', async () => {
    const { app, queue, job } = setup();
    await job.enqueueMany([{ payload: { n: 1 } }, { payload: { n: 2 } }]);
    const purged = await celeriac(['purge', queue, '--yes', '--broker', url]);
    expect([purged.code, purged.stdout.trim()]).toEqual([0, `purged 2 task(s) from ${queue}`]);
    const bad = app.task('op.bad', { input: z.object({}), retry: { maxAttempts: 1 } }, () => {
      throw new Error('boom');
    });
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const [x, y] = await bad.enqueueMany([{ payload: {} }, { payload: {} }]);
    await expect(y!.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await expect(x!.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await w.stop();
    await expect.poll(async () => (await (await app.connection()).broker.stats(queue)).dead, { timeout: 10_000 }).toBe(2);
    const listed = await celeriac(['inspect', 'dead', queue, '--broker', url]);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+AT\s+REASON$/);
    expect(listed.stdout).toMatch(new RegExp(`^${x!.id}\\s+\\d{4}-\\d\\d-\\d\\dT.*failed after 1 attempt\\(s\\): boom$`, 'm'));
    const redriven = await celeriac(['redrive', queue, '--id', x!.id, '--id', 'nope', '--broker', url]);
    expect(redriven.code).toBe(1); // one was refused
    expect(redriven.stdout.trim().split('\n')).toEqual([`redrove 1 dead letter(s) to ${queue}`, 'refused nope: not found']);
    expect(await (await app.connection()).broker.stats(queue)).toMatchObject({ ready: 1, dead: 1 });
    const discarded = await celeriac(['discard', queue, '--id', y!.id, '--yes', '--json', '--broker', url]);
    expect([discarded.code, JSON.parse(discarded.stdout)]).toEqual([0, { queue, discarded: 1 }]);
  });

  it('every inspect and control command prints JSON with --json', async () => {
    const { app, queue, job } = setup();
    const name = `json-${queue}`;
    app.schedule(name, { every: '1h', task: job, payload: { n: 0 } });
    const scheduler = new Scheduler(app);
    await scheduler.start();
    await scheduler.stop();
    const bad = app.task('op.bad-json', { input: z.object({}), retry: { maxAttempts: 1 } }, () => {
      throw new Error('boom');
    });
    const w = new Worker(app, { queues: [queue], blockMs: 200 });
    workers.push(w);
    await w.start();
    const dead = await bad.enqueue({});
    await expect(dead.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await w.stop();
    await expect.poll(async () => (await (await app.connection()).broker.stats(queue)).dead, { timeout: 10_000 }).toBe(1);
    const waiting = await job.enqueue({ n: 1 });
    const run = async (...args: string[]) => {
      const r = await celeriac([...args, '--json', '--broker', url]);
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as unknown;
    };
    expect(await run('inspect', 'dead', queue)).toEqual([expect.objectContaining({ id: dead.id, reason: 'failed after 1 attempt(s): boom', at: expect.any(Number) })]);
    expect(((await run('inspect', 'schedules')) as { name: string }[]).find((s) => s.name === name)).toMatchObject({ name, task: 'op.job', queue, expression: '1h', nextRun: expect.any(Number) });
    expect(await run('pause', queue)).toEqual({ queue, paused: true });
    expect(await run('resume', queue)).toEqual({ queue, paused: false, wasPaused: true });
    expect(await run('revoke', waiting.id)).toEqual({ id: waiting.id, status: 'revoked' });
    expect(await run('redrive', queue, '--id', dead.id)).toEqual({ redriven: [dead.id], refused: [] });
    expect(await run('purge', queue, '--yes')).toEqual({ queue, purged: 2 }); // the waiting one and the redriven one
  });

  it('says what is wrong: no broker, a bad subject or flag (exit 2); RabbitMQ alone refuses, naming the fix (exit 1)', async () => {
    const none = await celeriac(['inspect', 'queues']);
    expect([none.code, none.stderr.trim()]).toEqual([2, 'celeriac: give the broker: --broker <url>, $CELERIAC_BROKER_URL, or --app <module>']);
    const unreachable = await celeriac(['inspect', 'queues', '--broker', 'redis://127.0.0.1:1']);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
    const subject = await celeriac(['inspect', 'everything', '--broker', url]);
    expect(subject.code).toBe(2);
    expect(subject.stderr).toMatch(/unknown inspect subject "everything": use queues, workers, task, dead, schedules/);
    const flag = await celeriac(['pause', 'q', '--terminate', '--broker', url]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/celeriac pause does not take --terminate/);
    for (const destructive of [['purge', 'q1'], ['discard', 'q1', '--id', 'x']]) {
      const refused = await celeriac([...destructive, '--broker', url]); // no terminal to ask on, no --yes
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/add --yes to confirm/);
    }
    const help = await celeriac(['revoke', '--help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/^Usage: celeriac revoke <id> \[--terminate\]/)]);
    const alone = await celeriac(['pause', uniqueQueue('op'), '--broker', AMQP_URL]);
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/results: 'redis:\/\/…'/);
  });
});
