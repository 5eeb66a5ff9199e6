import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createApp } from '@celeriac/core';
import { removePrefix, uniquePrefix, urlWith } from './redis/helpers.js';

const CLI = ['--import', 'tsx', '--conditions=@celeriac/source', 'packages/worker/src/run-cli.ts'];

/** Runs `celeriac …` from sources; `onLine` sees stdout lines and may send signals. */
function celeriac(args: string[], env: Record<string, string>, onLine: (line: string, kill: (s: NodeJS.Signals) => void) => void = () => {}) {
  const child = spawn(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      stdout += line + '\n';
      onLine(line, (s) => child.kill(s));
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('celeriac command', () => {
  it('prints help for the command and for `worker`', async () => {
    const top = await celeriac(['--help'], {});
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Commands:\n\s+worker/);
    const worker = await celeriac(['worker', '--help'], {});
    expect(worker.code).toBe(0);
    expect(worker.stdout).toMatch(/--concurrency <n>/);
    expect(worker.stdout).toMatch(/--beat/);
    expect(worker.stdout).toMatch(/\.\/src\/app\.ts\s+when tsx is installed/);
    expect(worker.stdout).toMatch(/run node_modules\/\.bin\/celeriac itself, not npx or npm run/);
    const beat = await celeriac(['beat', '--help'], {});
    expect(beat.code).toBe(0);
    expect(beat.stdout).toMatch(/each tick is enqueued once/);
  });

  it('runs periodic tasks with `worker --beat`, one task per tick', async () => {
    const ids: string[] = [];
    const run = await celeriac(['worker', '--app', 'test/fixtures/beat-app.ts', '--beat'], {}, (line, kill) => {
      if (line.startsWith('tick beat ') && ids.push(line.split(' ')[2]!) === 3) kill('SIGTERM');
    });
    expect(run.code).toBe(0);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^beat:heartbeat:\d+000$/);
    expect(run.stderr).toMatch(/scheduler started/);
  });

  it('refuses `beat` for an app without schedules', async () => {
    const run = await celeriac(['beat', '--app', 'test/fixtures/cli-app.ts'], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/declares no schedules/);
  });

  it('explains a missing or wrong --app and exits 2', async () => {
    const missing = await celeriac(['worker'], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--app is required/);
    const wrong = await celeriac(['worker', '--app', 'test/fixtures/nope.js'], {});
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/no such module/);
    const flag = await celeriac(['worker', '--app', 'x', '--concurrency', 'lots'], {});
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--concurrency must be an integer ≥ 1 \(got lots\)/);
  });

  it('runs tasks and stops gracefully on SIGTERM', async () => {
    let finished = 0;
    const run = await celeriac(['worker', '--app', 'test/fixtures/cli-app.ts', '--concurrency', '2'], { FIXTURE_TASKS: '3' }, (line, kill) => {
      if (line.startsWith('finished') && ++finished === 3) kill('SIGTERM');
    });
    expect(run.code).toBe(0);
    expect(finished).toBe(3);
    expect(run.stderr).toMatch(/stopping gracefully/);
    expect(run.stderr).toMatch(/worker stopped/);
  });

  it('lets a running task finish after the first signal, and stops at once on the second', async () => {
    const graceful = await celeriac(['worker', '--app', 'test/fixtures/cli-app.ts'], { FIXTURE_TASKS: '1', FIXTURE_SLEEP_MS: '300' }, (line, kill) => {
      if (line === 'started 0') kill('SIGINT');
    });
    expect(graceful.code).toBe(0);
    expect(graceful.stdout).toMatch(/finished 0/);

    const started = Date.now();
    const hard = await celeriac(['worker', '--app', 'test/fixtures/cli-app.ts'], { FIXTURE_TASKS: '1', FIXTURE_SLEEP_MS: '60000' }, (line, kill) => {
      if (line === 'started 0') {
        kill('SIGTERM');
        setTimeout(() => kill('SIGTERM'), 200);
      }
    });
    expect(hard.code).toBe(0);
    expect(hard.stdout).not.toMatch(/finished 0/);
    expect(hard.stderr).toMatch(/stopping at once/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('returns the running task to the queue on a second signal (on Redis, checked from outside)', async () => {
    const prefix = uniquePrefix('cli');
    const url = urlWith(prefix);
    try {
      const hard = await celeriac(['worker', '--app', 'test/fixtures/cli-app.ts', '--broker', url], { FIXTURE_TASKS: '1', FIXTURE_SLEEP_MS: '60000' }, (line, kill) => {
        if (line === 'started 0') {
          kill('SIGTERM');
          setTimeout(() => kill('SIGTERM'), 200);
        }
      });
      expect(hard.code).toBe(0);
      const app = createApp({ broker: url });
      const { broker } = await app.connection();
      expect(await broker.stats('default')).toMatchObject({ ready: 1, inFlight: 0, completed: 0 });
      await app.close();
    } finally {
      await removePrefix(prefix);
    }
  });
});
