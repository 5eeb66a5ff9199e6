import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, removePrefix, uniquePrefix, urlWith } from './helpers.js';
import { killTestApp } from './kill-app.js';

const prefix = uniquePrefix('kill');
afterAll(() => removePrefix(prefix));

describe('redis: a worker killed with SIGKILL mid-task', () => {
  it('loses no task: every one completes on another worker once the dead one’s leases lapse', async () => {
    const url = urlWith(prefix, REDIS_URL);
    const queue = uniqueQueue('kill');
    const { app, sleepy } = killTestApp(url, queue);
    const handles = await Promise.all(Array.from({ length: 12 }, (_, i) => sleepy.enqueue({ i, ms: 400 })));

    const child = spawn(process.execPath, ['--conditions=@celeriac/source', '--import', 'tsx', fileURLToPath(new URL('./kill-worker.ts', import.meta.url)), url, queue], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const started: string[] = [];
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker exited early with ${code}`)));
      child.stdout.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) if (line.startsWith('started')) started.push(line);
        if (started.length >= 4) resolve(); // four tasks in its hands, none finished
      });
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const { inFlight } = await (await app.connection()).broker.stats(queue);
    expect(inFlight).toBeGreaterThanOrEqual(1); // leased by a process that no longer exists

    const worker = new Worker(app, { queues: [queue], concurrency: 4, leaseMs: 1_000, blockMs: 500 });
    await worker.start();
    try {
      const values = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
      expect(values).toEqual(handles.map((_, i) => i * 2));
      expect(await (await app.connection()).broker.stats(queue)).toMatchObject({ ready: 0, delayed: 0, inFlight: 0, dead: 0, failed: 0 });
    } finally {
      await worker.stop();
      await app.close();
    }
  }, 40_000);
});
