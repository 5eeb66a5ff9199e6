import { spawn } from 'node:child_process';
import { connectRedisBroker } from '@celeriac/redis-backend';
import { afterEach, describe, expect, it } from 'vitest';
import { FORCE_EXIT_MS } from '../../packages/worker/src/cli/signals.js';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';
import { FaultProxy } from '../support/fault-proxy.js';

const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];

// A `celeriac worker` whose stop hangs (here: cut off from Redis by a silent partition, so giving
// its running task back and closing wait on a connection that never answers) ignored a second
// SIGTERM beyond aborting its tasks once more: only SIGKILL ended it. Now the second signal ends
// the process FORCE_EXIT_MS later at the latest, with 128 + the signal's number.
describe('celeriac worker: a second signal during a stop that hangs', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  it('ends the process within FORCE_EXIT_MS, exit code 143, and the task is not lost', async () => {
    const proxy = await new FaultProxy(REDIS_URL).start();
    const prefix = uniquePrefix('clistop');
    cleanup.push(() => removePrefix(prefix), () => proxy.close());
    const url = urlWith(prefix, `redis://127.0.0.1:${proxy.port}`);
    const child = spawn(process.execPath, [...CLI, 'worker', '--app', 'test/fixtures/cli-app.ts', '--broker', url, '--lease-ms', '2000', '--grace-ms', '0'], {
      env: { ...process.env, FIXTURE_TASKS: '1', FIXTURE_SLEEP_MS: '60000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.push(async () => void child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker exited early with ${code}: ${stderr}`)));
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('started 0') && resolve());
    });

    proxy.drop();
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const second = Date.now();
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'running'>((r) => (timer = setTimeout(() => r('running'), FORCE_EXIT_MS + 6_000)))]);
    clearTimeout(timer);
    expect(code).toBe(143);
    expect(Date.now() - second).toBeGreaterThanOrEqual(FORCE_EXIT_MS - 100);
    expect(stderr).toMatch(/exiting now/);

    // Cut off, the worker could not give its task back: it comes back when its lease lapses.
    proxy.heal();
    const broker = await connectRedisBroker(urlWith(prefix));
    cleanup.push(() => broker.close());
    const [again] = await broker.fetch({ queues: ['default'], max: 1, leaseMs: 5_000, waitMs: 8_000 });
    expect(again?.message.task).toBe('echo');
    await again!.ack();
  }, 40_000);
});
