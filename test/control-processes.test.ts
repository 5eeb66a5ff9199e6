import { spawn, type ChildProcess } from 'node:child_process';
import { createApp, type App } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';

// The control plane against real `celeriac worker` processes on Redis: pause with two workers,
// revoke before start, a revoked delayed task across a restart of every worker, terminate,
// progress read from this process, redrive after a fix, a stopped worker leaving the registry.
const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];
const prefix = uniquePrefix('ctlproc');
const url = urlWith(prefix);
afterAll(() => removePrefix(prefix));

interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
  stopped: Promise<number | null>;
}

const running: WorkerProcess[] = [];
const apps: App[] = [];
afterEach(async () => {
  for (const w of running.splice(0)) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  for (const a of apps.splice(0)) await a.close();
});

/** Starts `celeriac worker` on the fixture app; resolves once it logged that it started. */
async function startWorker(queue: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [...CLI, 'worker', '--app', 'test/fixtures/control-app.ts', '--queues', queue, '--lease-ms', '5000'], {
    env: { ...process.env, CELERIAC_BROKER_URL: url, FIXTURE_QUEUE: queue, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w: WorkerProcess = { child, lines: [], stopped: new Promise((resolve) => child.once('exit', resolve)) };
  running.push(w);
  let started!: () => void;
  const ready = new Promise<void>((resolve) => (started = resolve));
  child.stdout!.on('data', (chunk: Buffer) => w.lines.push(...chunk.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (chunk: Buffer) => chunk.toString().includes('worker started') && started());
  await Promise.race([ready, w.stopped.then((code) => Promise.reject(new Error(`worker exited with ${code}`)))]);
  return w;
}

async function stop(w: WorkerProcess): Promise<void> {
  w.child.kill('SIGTERM');
  expect(await w.stopped).toBe(0);
}

/** This process's view: an app on the same Redis that declares the fixture's tasks by name. */
function operator(queue: string) {
  const app = createApp({ broker: url, defaultQueue: queue });
  apps.push(app);
  return {
    app,
    note: app.task('ctl.note', { input: z.object({ n: z.number() }) }, () => 0),
    long: app.task('ctl.long', { input: z.object({}) }, () => undefined),
    flaky: app.task('ctl.flaky', { input: z.object({}) }, () => ''),
  };
}

const ranIn = (w: WorkerProcess) => w.lines.filter((l) => l.startsWith('ran ')).map((l) => l.split(' ')[1]!);

describe('the control plane with real worker processes (Redis)', () => {
  it('pause holds both workers off the queue, resume lets them drain it; a stopped worker leaves the registry', async () => {
    const queue = uniqueQueue('pp');
    const { app, note } = operator(queue);
    const [a, b] = [await startWorker(queue), await startWorker(queue)];
    await app.control.pause(queue);
    await new Promise((r) => setTimeout(r, 2_000)); // both polled the pause
    const handles = await note.enqueueMany(Array.from({ length: 20 }, (_, n) => ({ payload: { n } })));
    await new Promise((r) => setTimeout(r, 1_500));
    expect([...ranIn(a), ...ranIn(b)]).toEqual([]);
    expect((await app.inspect.workers()).filter((w) => w.queues.includes(queue))).toHaveLength(2);
    await app.control.resume(queue);
    await Promise.all(handles.map((h) => h.result({ timeoutMs: 15_000 })));
    expect([...ranIn(a), ...ranIn(b)].sort()).toEqual(handles.map((h) => h.id).sort());
    await stop(a);
    expect((await app.inspect.workers()).filter((w) => w.queues.includes(queue)).map((w) => w.pid)).toEqual([b.child.pid]);
    await stop(b);
  }, 60_000);

  it('revoked before start: never runs; a revoked delayed task stays revoked across a restart of every worker', async () => {
    const queue = uniqueQueue('pr');
    const { note } = operator(queue);
    const now = await note.enqueue({ n: 1 });
    const later = await note.enqueue({ n: 2 }, { delayMs: 4_000 });
    await now.revoke();
    const first = await startWorker(queue);
    await expect(now.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'revoked' });
    await later.revoke();
    await stop(first);
    const second = await startWorker(queue); // a fresh process: it reads the revocations from the store
    await expect(later.result({ timeoutMs: 15_000 })).rejects.toMatchObject({ state: 'revoked' });
    const control = await note.enqueue({ n: 3 });
    expect(await control.result({ timeoutMs: 10_000 })).toBe(3);
    expect([...ranIn(first), ...ranIn(second)]).toEqual([control.id]);
    await stop(second);
  }, 60_000);

  it('terminate aborts a running task in another process; its progress was readable from here', async () => {
    const queue = uniqueQueue('pt');
    const { app, long } = operator(queue);
    const w = await startWorker(queue);
    const handle = await long.enqueue({});
    await expect.poll(() => handle.progress().then((p) => p?.value), { timeout: 10_000 }).toEqual({ done: 1, total: 2 });
    // The registry hears of a start within a fraction of a second (the worker writes soon after it).
    await expect.poll(() => app.inspect.task(handle.id), { timeout: 5_000 }).toMatchObject({ state: 'active', worker: expect.stringContaining(String(w.child.pid)), progress: { done: 1, total: 2 } });
    await handle.revoke({ terminate: true });
    await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'revoked' });
    await expect.poll(() => w.lines, { timeout: 5_000 }).toContain(`aborted ${handle.id} TaskRevokedError`);
    await new Promise((r) => setTimeout(r, 1_000)); // a retry (100 ms backoff) would have started
    expect(ranIn(w)).toEqual([handle.id]);
    await stop(w);
  }, 60_000);

  it('a dead letter redriven after the fix succeeds as a fresh attempt 1', async () => {
    const queue = uniqueQueue('pd');
    const { app, flaky } = operator(queue);
    const broken = await startWorker(queue);
    const handle = await flaky.enqueue({});
    await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
    await stop(broken);
    expect((await app.inspect.deadLetters(queue)).map((d) => d.id)).toEqual([handle.id]);
    const fixed = await startWorker(queue, { FIXTURE_FIXED: '1' });
    expect(await app.control.redrive(queue)).toEqual({ redriven: [handle.id], refused: [] });
    expect(await handle.result({ timeoutMs: 10_000 })).toBe('fixed');
    expect(fixed.lines).toContain(`ran ${handle.id} flaky attempt 1`);
    expect(await app.inspect.deadLetters(queue)).toEqual([]);
    await stop(fixed);
  }, 60_000);
});
