import { createApp, type App, type Logger } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { Worker } from '@celeriac/worker';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removePrefix, uniquePrefix, urlWith } from './helpers.js';

// A keyed handler that ignores its abort signal and never ends: after its time limit the worker
// keeps its key's claim renewed a while (so it never runs beside its own retry), but not forever —
// else the key's retries yield every second for as long as the process lives.
describe('claims of a handler that never ends', () => {
  const prefix = uniquePrefix('aband');
  let app: App | undefined;
  let worker: Worker | undefined;
  let openGate: (() => void) | undefined;
  afterAll(async () => {
    openGate?.();
    await worker?.stop({ graceMs: 2_000 });
    await app?.close();
    await removePrefix(prefix);
  });

  it('stop being renewed after the bound (timeoutMs more), so the retry takes the key and runs', async () => {
    const queue = uniqueQueue('aband');
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (_o: unknown, m?: string) => void warnings.push(String(m)), child: () => logger } as unknown as Logger;
    app = createApp({ broker: urlWith(prefix), defaultQueue: queue, logger });
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const attempts: number[] = [];
    const task = app.task(
      'stuck',
      { input: z.object({}), timeoutMs: 300, retry: { maxAttempts: 3, backoff: 'fixed', delayMs: 100 } },
      async (_: unknown, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) await gate; // ignores ctx.signal: JavaScript cannot kill it
        return `attempt ${ctx.attempt}`;
      },
    );
    worker = new Worker(app, { concurrency: 2, leaseMs: 1_000, blockMs: 200, logger });
    await worker.start();
    const handle = await task.enqueue({}, { idempotencyKey: `k-${queue}` });
    expect(await handle.result({ timeoutMs: 12_000 })).toBe('attempt 2');
    expect(attempts).toEqual([1, 2]);
    expect(warnings.some((m) => /ignored its abort signal still runs past its bound/.test(m))).toBe(true);
  }, 30_000);
});
